/* file_list: the files under a folder whose names end with a suffix, sorted: the one folder scanner (the *.dcm of
 * a DICOM tree, the PNGs of a prepared folder). */
#ifndef PN_DATA_FILE_LIST_H
#define PN_DATA_FILE_LIST_H

#include <stdbool.h>

#include "core/base.h"

/* Sorted list of the files in `dir` whose names end with `suffix` (full paths), recursive or not. */
pn_status pn_list_files(const char *dir, const char *suffix, bool recursive, char ***out, int *count);
void pn_free_list(char **list, int count);

#endif
