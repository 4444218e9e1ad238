/* register: makes the built-in backends known to core's registry. */
#include "register.h"

#include "backends/cpu/cpu.h"
#include "backends/ref/ref.h"
#include "core/backend.h"

void pn_register_builtin_backends(void) {
    pn_backend_register("ref", pn_ref_backend_create);
    pn_backend_register("cpu", pn_cpu_backend_create);
}
