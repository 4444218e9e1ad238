/* cmd_version: prints the version and which backends and libraries this binary was built with. */
#include <stdio.h>

#include "core/backend.h"

int pn_cmd_version(int argc, char **argv) {
    (void)argc;
    (void)argv;
    printf("pneumoseg %s\nbackends built in: %s\n", PN_VERSION, pn_backend_builtin_names());
    return 0;
}
