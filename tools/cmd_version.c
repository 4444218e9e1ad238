/* cmd_version: prints the version and which backends this binary was built with. */
#include <stdio.h>

#include "cli.h"
#include "core/backend.h"

int pn_cmd_version(int argc, char **argv) {
    const pn_opt opts[] = {{0}};
    const pn_command_help help = {"pneumoseg version", "Prints the version and the backends built in."};
    int rc = pn_cli_parse(argc, argv, opts, &help);
    if (rc) return rc < 0 ? 0 : rc;
    printf("pneumoseg %s\nbackends built in: %s\n", PN_VERSION, pn_backend_builtin_names());
    return 0;
}
