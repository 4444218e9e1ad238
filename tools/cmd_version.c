/* cmd_version: prints the version, the backends built in and whether the cuda module is there and usable. */
#include <stdio.h>

#include "cli.h"
#include "core/backend.h"
#include "train_dist.h"

int pn_cmd_version(int argc, char **argv) {
    const pn_opt opts[] = {{0}};
    const pn_command_help help = {"pneumoseg version",
                                  "Prints the version, the backends built in, whether the cuda backend module "
                                  "(libpneumoseg-cuda.so next to the binary or in PN_BACKEND_PATH) can run here, and "
                                  "the MPI library data-parallel training uses (mpirun -np N pneumoseg train)."};
    int rc = pn_cli_parse(argc, argv, opts, &help);
    if (rc) return rc < 0 ? 0 : rc;
    printf("pneumoseg %s\nbackends built in: %s\n", PN_VERSION, pn_backend_builtin_names());
    char why[512] = "";
    if (pn_backend_module_probe("cuda", why, sizeof why) > 0)
        printf("cuda module: usable\n");
    else
        printf("cuda module: unavailable: %s\n", why);
    char mpi[320];
    pn_train_dist_describe(mpi, sizeof mpi);
    printf("%s\n", mpi);
    return 0;
}
