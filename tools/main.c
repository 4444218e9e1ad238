/* main: the pneumoseg command line; dispatches to one file per subcommand (commands.def). */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "backends/register.h"
#include "core/base.h"
#include "tools/commands.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
#define CMD(name, fn, summary) {#name, fn, summary},
#include "commands.def"
#undef CMD
};

static void print_usage(FILE *to) {
    fprintf(to, "usage: pneumoseg <command> [options]   (pneumoseg <command> --help for its options)\n\n"
                "SIIM-ACR pneumothorax segmentation: DICOM in, U-Net (smp encoders, AlbuNet; `pneumoseg models`), RLE "
                "submission out.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(to, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("pneumoseg %s\n", PN_VERSION);
        return 0;
    }
    /* Temporaries of 1 MB and more (weight init, host copies) come from mmap and go back to the OS when freed,
     * instead of glibc's growing dynamic threshold keeping them resident in the heap (7 MB of peak RSS at 512). */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    pn_register_builtin_backends();
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "pneumoseg: unknown command '%s'\n", argv[1]);
    print_usage(stderr);
    return 2;
}
