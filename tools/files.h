/* files: small file and folder helpers of the commands. */
#ifndef PN_TOOLS_FILES_H
#define PN_TOOLS_FILES_H

#include <stdbool.h>

#include "core/base.h"

bool pn_file_exists(const char *path);
/* Creates a directory (and parents); fine if it exists. */
pn_status pn_mkdirs(const char *path);
/* Sorted list of the files in `dir` whose names end with `suffix` (full paths), recursive or not. */
pn_status pn_list_files(const char *dir, const char *suffix, bool recursive, char ***out, int *count);
void pn_free_list(char **list, int count);

#endif
