/* file_list: the sorted list of the files under a folder whose names end with a suffix. */
#define _DEFAULT_SOURCE
#include "file_list.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct str_vec {
    char **v;
    int n, cap;
} str_vec;

static pn_status vec_push(str_vec *s, const char *text) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        char **nv = realloc(s->v, (size_t)cap * sizeof *nv);
        if (!nv) return pn_error(PN_ERR_NOMEM, "out of memory listing files");
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n] = pn_strdup(text);
    if (!s->v[s->n]) return pn_error(PN_ERR_NOMEM, "out of memory listing files");
    s->n++;
    return PN_OK;
}

/* Folders deeper than this below the one given are refused (a loop of links, or not a data set). */
#define MAX_DEPTH 16

static pn_status walk(const char *dir, const char *suffix, bool recursive, int depth, str_vec *out) {
    if (depth > MAX_DEPTH) return pn_error(PN_ERR_IO, "%s: folders nested too deeply", dir);
    DIR *d = opendir(dir);
    if (!d) return pn_error(PN_ERR_IO, "%s: cannot open the folder: %s", dir, strerror(errno));
    pn_status st = PN_OK;
    struct dirent *e;
    size_t ls = strlen(suffix);
    while (st == PN_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        size_t need = strlen(dir) + strlen(e->d_name) + 2, ln = strlen(e->d_name);
        char *path = malloc(need);
        if (!path) {
            st = pn_error(PN_ERR_NOMEM, "out of memory listing %s", dir);
            break;
        }
        snprintf(path, need, "%s/%s", dir, e->d_name);
        struct stat sb; /* a name that cannot be stat'ed is taken for a file: its reader says what is wrong */
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            if (recursive) st = walk(path, suffix, recursive, depth + 1, out);
        } else if (ln > ls && strcmp(e->d_name + ln - ls, suffix) == 0) {
            st = vec_push(out, path);
        }
        free(path);
    }
    closedir(d);
    return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

pn_status pn_list_files(const char *dir, const char *suffix, bool recursive, char ***out, int *count) {
    str_vec v = {0};
    pn_status st = walk(dir, suffix, recursive, 0, &v);
    if (st != PN_OK) {
        pn_free_list(v.v, v.n);
        return st;
    }
    if (v.n) qsort(v.v, (size_t)v.n, sizeof *v.v, cmp_str);
    *out = v.v;
    *count = v.n;
    return PN_OK;
}

void pn_free_list(char **list, int count) {
    for (int i = 0; i < count; i++) free(list[i]);
    free(list);
}
