/* Building table schemas column by column (gen/core/table.c), for the
 * library's own tables (phantom lesion and per-image tables, image-field info
 * tables). Each call appends one column to s->columns, which must have room
 * for it; strings are copied, and the schema is released with
 * ms_table_schema_deinit. They return nonzero when a copy failed (the column
 * is still counted, so the deinit frees what was copied). */
#ifndef MS_CORE_TABLE_BUILD_H
#define MS_CORE_TABLE_BUILD_H

#include "medsynth/table.h"

/* A column without precision, categories or reference (unit, desc may be NULL). */
int ms__schema_add_col(ms_table_schema *s, const char *name, ms_coltype t, const char *unit, const char *desc);
/* A copy of the key column of records table `table` (type and width), with
 * references "table.<key name>". */
int ms__schema_add_key_col(ms_table_schema *s, const ms_column *key, const char *table);

#endif
