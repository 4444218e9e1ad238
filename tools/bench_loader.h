/* bench_loader: `pneumoseg bench loader`: images per second of the batch loader (PNG -> augment -> float NCHW). */
#ifndef PN_TOOLS_BENCH_LOADER_H
#define PN_TOOLS_BENCH_LOADER_H

/* Runs the loader benchmark; argv[0] is the subcommand name ("loader"). Returns the exit code. */
int pn_bench_loader(int argc, char **argv);

#endif
