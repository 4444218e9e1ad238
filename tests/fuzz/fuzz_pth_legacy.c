/* fuzz_pth_legacy: data/pth's legacy-format reader (magic, protocol and system-info pickles, the object pickle, the
 * storage keys, the raw storages) on any bytes; an input that does not start like a legacy checkpoint gets its
 * first bytes (PROTO 2, LONG1 10) so the fuzzer spends its time past the sniffing. */
#include "tests/fuzz/fuzz_file.h" /* first: it sets _GNU_SOURCE for memfd_create */
#include <string.h>

#include "tests/fuzz/fuzz_pth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t head[4] = {0x80, 0x02, 0x8a, 0x0a};
    if (size >= 4 && !memcmp(data, head, 4)) {
        fuzz_pth_check(fuzz_file(data, size));
        return 0;
    }
    uint8_t *b = malloc(size + 4);
    if (!b) return 0;
    memcpy(b, head, 4);
    if (size) memcpy(b + 4, data, size);
    fuzz_pth_check(fuzz_file(b, size + 4));
    free(b);
    return 0;
}
