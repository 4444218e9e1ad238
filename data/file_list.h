/* file_list: the files under a folder whose names end with a suffix, sorted: the one folder scanner (the *.dcm of
 * a DICOM tree, the PNGs of a prepared folder). */
#ifndef PN_DATA_FILE_LIST_H
#define PN_DATA_FILE_LIST_H

#include <stdbool.h>

#include "core/base.h"

/* The files in `dir` whose names end with `suffix` ("" = every file), as full paths, sorted, *out malloc'ed (free it
 * with pn_free_list). Recursive: in every folder below too (at most 16 deep, else an error). Names starting with '.'
 * are left out; a name that cannot be stat'ed is taken for a file. An empty list is not an error. */
pn_status pn_list_files(const char *dir, const char *suffix, bool recursive, char ***out, int *count);
void pn_free_list(char **list, int count);

#endif
