/* checks: what a command checks before its work: that it can write where it is told to, that it overwrites nothing a
 * user has without --force and never one of its own inputs, and that thread counts fit the machine. */
#ifndef PN_TOOLS_CHECKS_H
#define PN_TOOLS_CHECKS_H

#include <stdbool.h>

#include "core/base.h"

/* A path the command was given, with the option that named it (for messages): {"--input", "x.npy"}. */
typedef struct pn_named_path {
    const char *option, *path; /* path NULL: not given (skipped) */
} pn_named_path;

/* An output file. Fails (naming `option` and the user's path) when it is one of `inputs` (the same file, even
 * with --force) or names a folder; when it exists and `force` is false; when the folder that would hold it does
 * not exist or cannot be written. PN_ERR_IO for all of them. */
pn_status pn_check_out_file(const char *option, const char *path, bool force, const pn_named_path *inputs,
                            int n_inputs);
/* An output folder (created later if absent). Fails when it is one of `inputs` (even with --force); when it is a
 * file; when it exists, holds anything and `force` is false; when it (or the nearest folder above it, where it
 * does not exist yet) cannot be written. */
pn_status pn_check_out_dir(const char *option, const char *dir, bool force, const pn_named_path *inputs, int n_inputs);
/* Two outputs of one command that would land in the same place (same file or folder): a usage error naming
 * both options. NULL paths are skipped. */
pn_status pn_check_distinct_outputs(const pn_named_path *outputs, int n);
/* True when a and b name the same existing file or folder, or would name the same new one. */
bool pn_same_place(const char *a, const char *b);

/* The model flags of a command, before any work: an --encoder, --decoder or --attention that names no
 * architecture (or a combination none has: AlbuNet is resnet34 only without attention), a --conv-algo other than
 * direct, winograd or auto: PN_ERR_USAGE naming the value. NULL: not given (the weights file's or the default). */
pn_status pn_check_model_flags(const char *encoder, const char *decoder, const char *attention, const char *conv_algo);
/* --precision before any work: fp32, bf16 or fp16 (NULL: not given), else PN_ERR_USAGE. Whether the backend computes
 * in it is known once the backend is open. */
pn_status pn_check_precision(const char *precision);

/* The cores this process may run on (its CPU affinity), at least 1. */
int pn_cores(void);
/* A --threads-like count: 0 stays 0 (all cores); above the machine's cores it is capped with a note naming
 * `option`. Negative counts are refused by the option's range before this. */
int pn_cap_threads(const char *option, int n);

/* Whether `id` can name a file in a folder: 1..200 bytes, no '/', '\\' or control character, not "." or "..",
 * no leading or trailing blank. Fails with PN_ERR_FORMAT naming `where`. */
pn_status pn_check_file_id(const char *id, const char *where);

/* Whether `id` can be written as an unquoted CSV field that reads back the same (Kaggle's submission format): no
 * comma, quote or control character, no leading or trailing blank, not empty. Fails naming `where`. */
pn_status pn_check_csv_id(const char *id, const char *where);

#endif
