/* register: makes the built-in backends known to core's registry and sets the order --backend auto tries. */
#include "register.h"

#include "backends/cpu/cpu.h"
#include "backends/ref/ref.h"
#include "core/backend.h"

void pn_register_builtin_backends(void) {
    pn_backend_register("ref", pn_ref_backend_create);
    pn_backend_register("cpu", pn_cpu_backend_create);
    /* --backend auto: the cuda module where it loads and finds a device, else the cpu backend (ref is the oracle,
     * last). */
    pn_backend_set_auto_order("cuda,cpu,ref");
}
