/* Internals shared by the expression compiler (expr_parse.c, expr_compile.c)
 * and the evaluator (expr_vm.c). See records/expr.h for the language.
 *
 * Pipeline: source -> tokens -> AST (expr_parse.c) -> typed instructions in
 * post-order, constants folded, unreachable instructions dropped
 * (expr_compile.c) -> block evaluation (expr_vm.c).
 *
 * Program model: instruction i writes register i; operands are registers of
 * earlier instructions (a, b, c; -1 = none), so the program is a DAG in
 * topological order and evaluation is one forward sweep per block of
 * MS__EXPR_BLOCK rows. Every register holds, per row, a value in its type's
 * layout (double, uint8_t, int32_t, int64_t, const char *) and a state byte:
 *   0 missing, 1 present, 2 error (the row's value could not be computed).
 * Invariants the kernels rely on: present number/duration values are finite;
 * categorical codes are in range for every row (missing rows included);
 * string pointers are never NULL. Values of missing/error rows are otherwise
 * arbitrary but never used in a way that is undefined behaviour.
 *
 * Private to the library (ms__ prefix). */
#ifndef MS_RECORDS_EXPR_INTERNAL_H
#define MS_RECORDS_EXPR_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "records/expr.h"

#define MS__EXPR_BLOCK 256

/* Limits that keep the recursive parser and compiler within a small stack:
 * the AST may be at most this deep (a chain a + b + ... counts one level
 * per operator) and parentheses, prefix operators and chains of the
 * right-associative ^ may nest this far. */
#define MS__EXPR_MAX_DEPTH 1000
#define MS__EXPR_MAX_NEST 200

#define MS__ST_MISSING 0
#define MS__ST_PRESENT 1
#define MS__ST_ERROR 2

/* Dates are limited to years 1..9999 (days since 1970-01-01). */
#define MS__EXPR_DATE_MIN (-719162)
#define MS__EXPR_DATE_MAX 2932896

/* ------------------------------------------------------------------ AST */

typedef enum {
  MS__AST_NUM,
  MS__AST_STR,
  MS__AST_BOOL,
  MS__AST_NAME,
  MS__AST_UNARY,  /* op: '-', '+', 'n' (not) */
  MS__AST_BINARY, /* op: token kind of the operator */
  MS__AST_CALL,   /* str = function name */
  MS__AST_IN,     /* args[0] in (args[1..]); negate = "not in" */
  MS__AST_COUNT
} ms__ast_kind;

/* Token kinds that double as binary operator codes. */
enum {
  MS__TK_END = 0,
  MS__TK_NUM,
  MS__TK_STR,
  MS__TK_NAME,
  MS__TK_LP,
  MS__TK_RP,
  MS__TK_COMMA,
  MS__TK_ADD,
  MS__TK_SUB,
  MS__TK_MUL,
  MS__TK_DIV,
  MS__TK_MOD,
  MS__TK_POW,
  MS__TK_EQ,
  MS__TK_NE,
  MS__TK_LT,
  MS__TK_LE,
  MS__TK_GT,
  MS__TK_GE,
  MS__TK_AND,
  MS__TK_OR,
  MS__TK_NOT,
  MS__TK_IN,
  MS__TK_TRUE,
  MS__TK_FALSE,
  MS__TK_COUNT
};

typedef struct ms__ast ms__ast;
struct ms__ast {
  ms__ast_kind kind;
  int op;
  int offset;     /* byte offset of the node's key token (operator, name, literal) */
  int negate;     /* IN: "not in" */
  int depth;      /* 1 + the deepest argument (bounded by MS__EXPR_MAX_DEPTH) */
  double num;
  char *str;      /* NAME / CALL name, STR literal (arena) */
  int n_args;
  ms__ast **args; /* UNARY: 1, BINARY: 2, CALL: n, IN: 1 + items */
};

/* Bump allocator for AST nodes and strings; freed all at once. */
typedef struct ms__arena_block ms__arena_block;
typedef struct {
  ms__arena_block *head;
  int failed;
} ms__arena;

void *ms__arena_alloc(ms__arena *a, size_t n);
char *ms__arena_strndup(ms__arena *a, const char *s, size_t n);
void ms__arena_free(ms__arena *a);

/* Error sink shared by the compile stages: maps byte offsets to spec
 * positions and counts errors. */
typedef struct {
  const ms__expr_compile_params *o;
  ms_diag *d;
  int n_errors;
  int nomem;
} ms__expr_errs;

void ms__expr_err(ms__expr_errs *E, int offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Spec position of a byte offset (honours o->escaped). */
void ms__expr_pos_of(const ms__expr_compile_params *o, int offset, int *line, int *column);

/* Parses src into an AST. NULL after reporting a syntax error to E (or on
 * allocation failure, E->nomem set). */
ms__ast *ms__expr_parse(const char *src, ms__arena *a, ms__expr_errs *E);

/* ----------------------------------------------------------- instructions */

typedef enum {
  MS__OP_CONST,
  MS__OP_LOAD,
  /* numbers and durations (double) */
  MS__OP_ADD,
  MS__OP_SUB,
  MS__OP_MUL,
  MS__OP_DIV,
  MS__OP_MOD,
  MS__OP_POW,
  MS__OP_SQUARE,
  MS__OP_NEG,
  MS__OP_ABS,
  MS__OP_LOG,
  MS__OP_LOG10,
  MS__OP_EXP,
  MS__OP_SQRT,
  MS__OP_FLOOR,
  MS__OP_CEIL,
  MS__OP_ROUND,
  MS__OP_ROUND_D,
  MS__OP_MIN,   /* sub: element class */
  MS__OP_MAX,
  MS__OP_CLAMP,
  /* comparisons: sub = comparison (MS__TK_EQ..GE) | class << 4 */
  MS__OP_CMP,
  /* logic */
  MS__OP_AND,
  MS__OP_OR,
  MS__OP_NOT,
  /* membership: sub = class; p1 = table, n1 = size */
  MS__OP_IN,
  MS__OP_CODE_TABLE, /* categorical code -> bool via p1 (uint8_t[n]) */
  /* selection (element size from the result type) */
  MS__OP_IF,
  MS__OP_COALESCE,
  MS__OP_ISMISSING,
  /* dates and times */
  MS__OP_DATE_ADD, /* date + duration (days, rounded) ; sub 1: subtract */
  MS__OP_DT_ADD,   /* datetime + duration ; sub 1: subtract */
  MS__OP_DATE_DIFF,
  MS__OP_DT_DIFF,
  MS__OP_DATE_TO_DT,
  MS__OP_DT_TO_DATE,
  MS__OP_DATE_PARSE,
  MS__OP_DT_PARSE,
  MS__OP_YEAR,
  MS__OP_MONTH,
  MS__OP_DAY,
  MS__OP_YEARS_BETWEEN,
  /* strings */
  MS__OP_STARTSWITH,
  MS__OP_CAT_TO_STR, /* p1 = labels */
  MS__OP_LOOKUP_CAT, /* p1 = int32 row per code (-1 none), p2 = vocab, n1 = value col */
  MS__OP_LOOKUP_STR, /* p2 = vocab, n1 = value col, n2 = key col */
  MS__OP_LOOKUP_NUM_CAT, /* p1 = row per code, p3 = double[n_rows] */
  MS__OP_LOOKUP_NUM_STR, /* p2 = vocab, n2 = key col, p3 = double[n_rows] */
  MS__OP_COUNT
} ms__op;

/* Element classes of comparisons, min/max and membership. */
enum {
  MS__CL_F64 = 0,
  MS__CL_I32 = 1,
  MS__CL_I64 = 2,
  MS__CL_U8 = 3,
  MS__CL_STR = 4
};

typedef struct {
  uint16_t op;
  uint8_t type; /* ms__expr_type of the result */
  uint8_t sub;
  int32_t a, b, c;
  int32_t offset; /* source byte offset for error messages */
  /* LOAD */
  int32_t slot;
  uint8_t layout;
  size_t width;
  /* CONST: value, state and (state == error) status and message */
  double kf;
  int64_t ki;
  const char *ks;
  uint8_t kstate;
  ms_status kstatus;
  const char *kmsg;
  /* auxiliary tables (owned by the expression) */
  const void *p1;
  const void *p2;
  const void *p3;
  int64_t n1, n2;
} ms__ins;

struct ms__expr {
  char *src;
  ms__expr_type type;
  size_t n_ins;
  ms__ins *ins; /* result is the last instruction */
  size_t n_cats;
  char **cats; /* categorical result labels (owned via pool) */
  size_t n_names;
  char **names;
  size_t n_slots;
  /* every malloc'd block the instructions point into */
  size_t n_pool, cap_pool;
  void **pool;
  /* position for runtime errors */
  char *file;
  char *where;
  int line, column, escaped;
};

/* Registers of one evaluation. */
typedef struct {
  void *v;
  uint8_t *s;
} ms__reg;

/* Runs instructions over frame rows [start, start + n) into registers R.
 * Registers of CONST instructions must already be filled (ms__expr_fill_consts).
 * buf[i] is instruction i's own storage (MS__EXPR_BLOCK * 8 values followed by
 * MS__EXPR_BLOCK states); LOAD may point R[i].v at frame memory instead. */
void ms__expr_run(const ms__expr *e, const ms__expr_col *cols, size_t start, size_t n,
                  ms__reg *R, unsigned char *const *buf);
void ms__expr_fill_consts(const ms__expr *e, ms__reg *R, size_t n);
/* Fills register r with n copies of constant instruction i. */
void ms__expr_fill_consts_one(const ms__expr *e, size_t i, ms__reg *r, size_t n);
/* Runs a single instruction (operands already in R) on n rows. */
void ms__expr_run_one(const ms__expr *e, size_t i, const ms__expr_col *cols, size_t start,
                      size_t n, ms__reg *R);
/* Describes why instruction i failed at row 0 of R (operands in R). */
ms_status ms__expr_describe(const ms__expr *e, size_t i, const ms__reg *R, char *msg,
                            size_t cap);

/* Element size of a type's register/result layout. */
size_t ms__expr_type_size(ms__expr_type t);

/* Levenshtein distance bounded by max (returns max + 1 when larger). */
int ms__expr_edit_distance(const char *a, const char *b, int max);

#endif
