/* Ends what fs_alloc_begin.h began. */
#undef malloc
#undef calloc
#undef realloc
#undef strdup
#undef strndup
