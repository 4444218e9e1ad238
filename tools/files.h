/* files: small file and folder helpers of the commands (file lists: data/file_list.h). */
#ifndef PN_TOOLS_FILES_H
#define PN_TOOLS_FILES_H

#include <stdbool.h>

#include "core/base.h"
#include "data/file_list.h"

bool pn_file_exists(const char *path);
/* Creates a directory (and parents); fine if it exists. */
pn_status pn_mkdirs(const char *path);

#endif
