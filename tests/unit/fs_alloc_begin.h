/* Routes the allocations of what is #included next through fs_alloc.h's
 * wrappers, until fs_alloc_end.h. Not guarded: it is meant to be included
 * where it is used. */
#undef strdup
#undef strndup
#define malloc(n) t_malloc(n)
#define calloc(n, m) t_calloc(n, m)
#define realloc(p, n) t_realloc(p, n)
#define strdup(s) t_strdup(s)
#define strndup(s, n) t_strndup(s, n)
