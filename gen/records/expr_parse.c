/* Expression lexer and recursive-descent parser (source -> AST), the error
 * sink with column mapping, the AST arena, and ms__expr_scan_names.
 *
 * Grammar, lowest precedence first (docs/expressions.md has the table):
 *   or    := and ('or' and)*
 *   and   := not ('and' not)*
 *   not   := 'not' not | cmp
 *   cmp   := add [ ('=='|'!='|'<'|'<='|'>'|'>=') add
 *                | ['not'] 'in' '(' expr (',' expr)* [','] ')' ]   (no chaining)
 *   add   := mul (('+'|'-') mul)*
 *   mul   := unary (('*'|'/'|'%') unary)*
 *   unary := ('-'|'+') unary | power
 *   power := atom ['^' unary]          (right-associative: 2^3^2 = 2^9;
 *                                        -2^2 = -(2^2); 2^-1 allowed)
 *   atom  := number | string | 'true' | 'false' | name ['(' args ')']
 *          | '(' expr ')'
 * Names are identifiers joined by dots (parent.birth_date). Strings use
 * single or double quotes; a doubled quote inside stands for itself.
 *
 * Invariants: every AST node records the byte offset of its key token, so
 * errors point at the offending character. The parser stops at the first
 * syntax error (later ones would mostly be consequences of it). */
#include <ctype.h>
#include "core/alloc.h"
#include "core/diag.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "records/expr_internal.h"

/* ------------------------------------------------------------------ arena */

struct ms__arena_block {
  ms__arena_block *next;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
};

void *ms__arena_alloc(ms__arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (!a->head || a->head->cap - a->head->used < n) {
    size_t cap = n > 4096 ? n : 4096;
    ms__arena_block *b = ms__malloc(sizeof *b + cap);
    if (!b) {
      a->failed = 1;
      return NULL;
    }
    b->next = a->head;
    b->used = 0;
    b->cap = cap;
    a->head = b;
  }
  void *p = a->head->data + a->head->used;
  a->head->used += n;
  memset(p, 0, n);
  return p;
}

char *ms__arena_strndup(ms__arena *a, const char *s, size_t n) {
  char *p = ms__arena_alloc(a, n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

void ms__arena_free(ms__arena *a) {
  ms__arena_block *b = a->head;
  while (b) {
    ms__arena_block *n = b->next;
    free(b);
    b = n;
  }
  a->head = NULL;
}

/* ----------------------------------------------------------------- errors */

void ms__expr_pos_of(const ms__expr_compile_params *o, int offset, int *line, int *column) {
  *line = o->line;
  if (o->escaped || o->column <= 0 || offset < 0)
    *column = o->column;
  else
    *column = o->column + offset;
}

void ms__expr_err(ms__expr_errs *E, int offset, const char *fmt, ...) {
  int line, col;
  ms__expr_pos_of(E->o, offset, &line, &col);
  va_list ap;
  va_start(ap, fmt);
  ms_diag_vadd(E->d, MS_ERR_SPEC, MS_SEV_ERROR, E->o->file, line, col, E->o->where, fmt, ap);
  va_end(ap);
  E->n_errors++;
}

int ms__expr_edit_distance(const char *a, const char *b, int max) {
  /* Optimal string alignment distance: insertions, deletions, substitutions
   * and transpositions of adjacent characters each cost one. */
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return max + 1;
  if ((int)(la > lb ? la - lb : lb - la) > max) return max + 1;
  int r0[65], r1[65], r2[65];
  int *pp = r0, *prev = r1, *cur = r2;
  for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    cur[0] = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      int v = prev[j - 1] + cost;
      if (prev[j] + 1 < v) v = prev[j] + 1;
      if (cur[j - 1] + 1 < v) v = cur[j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
        v = pp[j - 2] + 1;
      cur[j] = v;
    }
    int *t = pp;
    pp = prev;
    prev = cur;
    cur = t;
  }
  return prev[lb] > max ? max + 1 : prev[lb];
}

/* ------------------------------------------------------------------ lexer */

typedef struct {
  int kind;
  int offset;
  int len;
  double num;
  char *str; /* NAME / STR text (arena) */
} token;

typedef struct {
  const char *src;
  size_t len;
  size_t pos;
  token tk;
  ms__arena *a;
  ms__expr_errs *E;
  int failed; /* a syntax error was reported */
  int nest;   /* current recursion depth of p_or / p_unary / p_power / p_not */
} parser;

static const char *tk_text(int k) {
  static const char *const t[] = {"end of expression", "number", "string", "name", "'('",
                                  "')'", "','", "'+'", "'-'", "'*'", "'/'", "'%'", "'^'",
                                  "'=='", "'!='", "'<'", "'<='", "'>'", "'>='", "'and'",
                                  "'or'", "'not'", "'in'", "'true'", "'false'"};
  return (unsigned)k < MS__TK_COUNT ? t[k] : "?";
}

static void syntax(parser *P, int offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void syntax(parser *P, int offset, const char *fmt, ...) {
  if (P->failed) return;
  P->failed = 1;
  int line, col;
  ms__expr_pos_of(P->E->o, offset, &line, &col);
  va_list ap;
  va_start(ap, fmt);
  ms_diag_vadd(P->E->d, MS_ERR_SPEC, MS_SEV_ERROR, P->E->o->file, line, col, P->E->o->where,
               fmt, ap);
  va_end(ap);
  P->E->n_errors++;
}

static int is_ident_start(int c) { return isalpha(c) || c == '_'; }
static int is_ident_char(int c) { return isalnum(c) || c == '_'; }

/* The operators, each two-character one before its first character; one
 * with a hint is not valid: reported as "unexpected 'op' (hint)" and read
 * as `kind`. */
static const struct {
  const char *op;
  int kind;
  const char *hint;
} k_ops[] = {
    {"**", MS__TK_POW, "use '^' for powers"}, {"==", MS__TK_EQ, NULL},   {"!=", MS__TK_NE, NULL},
    {"<=", MS__TK_LE, NULL},                  {"<>", MS__TK_NE, "use '!='"}, {">=", MS__TK_GE, NULL},
    {"&&", MS__TK_AND, "use 'and'"},          {"||", MS__TK_OR, "use 'or'"}, {"(", MS__TK_LP, NULL},
    {")", MS__TK_RP, NULL},                   {",", MS__TK_COMMA, NULL},   {"+", MS__TK_ADD, NULL},
    {"-", MS__TK_SUB, NULL},                  {"*", MS__TK_MUL, NULL},     {"/", MS__TK_DIV, NULL},
    {"%", MS__TK_MOD, NULL},                  {"^", MS__TK_POW, NULL},     {"=", MS__TK_EQ, "use '==' to compare"},
    {"!", MS__TK_NOT, "use 'not'"},           {"<", MS__TK_LT, NULL},      {">", MS__TK_GT, NULL},
    {"&", MS__TK_AND, "use 'and'"},           {"|", MS__TK_OR, "use 'or'"}};

/* Reads the next token into P->tk; reports lexical errors. */
static void next(parser *P) {
  const char *s = P->src;
  size_t i = P->pos;
  while (i < P->len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
  token t = {0};
  t.offset = (int)i;
  if (i >= P->len) {
    t.kind = MS__TK_END;
    P->tk = t;
    P->pos = i;
    return;
  }
  unsigned char c = (unsigned char)s[i];
  if (isdigit(c) || (c == '.' && i + 1 < P->len && isdigit((unsigned char)s[i + 1]))) {
    size_t j = i;
    while (j < P->len && isdigit((unsigned char)s[j])) j++;
    if (j < P->len && s[j] == '.') {
      j++;
      while (j < P->len && isdigit((unsigned char)s[j])) j++;
    }
    if (j < P->len && (s[j] == 'e' || s[j] == 'E')) {
      size_t k = j + 1;
      if (k < P->len && (s[k] == '+' || s[k] == '-')) k++;
      if (k < P->len && isdigit((unsigned char)s[k])) {
        while (k < P->len && isdigit((unsigned char)s[k])) k++;
        j = k;
      } else {
        syntax(P, (int)j, "malformed number: exponent has no digits");
      }
    }
    if (j < P->len && is_ident_char((unsigned char)s[j])) {
      syntax(P, (int)j, "unexpected '%c' after number", s[j]);
    }
    char buf[128];
    size_t n = j - i < sizeof buf - 1 ? j - i : sizeof buf - 1;
    memcpy(buf, s + i, n);
    buf[n] = 0;
    t.kind = MS__TK_NUM;
    t.num = strtod(buf, NULL);
    if (!(t.num <= 1.7976931348623157e308)) syntax(P, (int)i, "number %s is too large", buf);
    t.len = (int)(j - i);
    P->pos = j;
    P->tk = t;
    return;
  }
  if (is_ident_start(c)) {
    size_t j = i;
    for (;;) {
      while (j < P->len && is_ident_char((unsigned char)s[j])) j++;
      if (j + 1 < P->len && s[j] == '.' && is_ident_start((unsigned char)s[j + 1])) {
        j++;
        continue;
      }
      break;
    }
    size_t n = j - i;
    t.len = (int)n;
    P->pos = j;
    if (n == 3 && !memcmp(s + i, "and", 3)) t.kind = MS__TK_AND;
    else if (n == 2 && !memcmp(s + i, "or", 2)) t.kind = MS__TK_OR;
    else if (n == 3 && !memcmp(s + i, "not", 3)) t.kind = MS__TK_NOT;
    else if (n == 2 && !memcmp(s + i, "in", 2)) t.kind = MS__TK_IN;
    else if (n == 4 && !memcmp(s + i, "true", 4)) t.kind = MS__TK_TRUE;
    else if (n == 5 && !memcmp(s + i, "false", 5)) t.kind = MS__TK_FALSE;
    else {
      t.kind = MS__TK_NAME;
      t.str = ms__arena_strndup(P->a, s + i, n);
      if (!t.str) P->E->nomem = 1;
    }
    P->tk = t;
    return;
  }
  if (c == '\'' || c == '"') {
    /* Decode into a buffer: a doubled quote is a literal quote. */
    size_t j = i + 1, n = 0;
    char *buf = ms__arena_alloc(P->a, P->len - i + 1);
    if (!buf) {
      P->E->nomem = 1;
      P->tk.kind = MS__TK_END;
      return;
    }
    for (;;) {
      if (j >= P->len) {
        syntax(P, (int)i, "unterminated string (missing closing %c)", c);
        P->pos = P->len;
        t.kind = MS__TK_END;
        P->tk = t;
        return;
      }
      if ((unsigned char)s[j] == c) {
        if (j + 1 < P->len && (unsigned char)s[j + 1] == c) {
          buf[n++] = (char)c;
          j += 2;
          continue;
        }
        j++;
        break;
      }
      buf[n++] = s[j++];
    }
    buf[n] = 0;
    t.kind = MS__TK_STR;
    t.str = buf;
    t.len = (int)(j - i);
    P->pos = j;
    P->tk = t;
    return;
  }
  size_t o = 0;
  while (o < sizeof k_ops / sizeof *k_ops &&
         !(i + strlen(k_ops[o].op) <= P->len && !memcmp(s + i, k_ops[o].op, strlen(k_ops[o].op))))
    o++;
  int k = MS__TK_END, w = 1;
  if (o < sizeof k_ops / sizeof *k_ops) {
    k = k_ops[o].kind;
    w = (int)strlen(k_ops[o].op);
    if (k_ops[o].hint) syntax(P, (int)i, "unexpected '%s' (%s)", k_ops[o].op, k_ops[o].hint);
  } else if (c >= 0x20 && c < 0x7f) {
    syntax(P, (int)i, "unexpected character '%c'", c);
  } else {
    syntax(P, (int)i, "unexpected byte 0x%02x", c);
  }
  t.kind = k;
  t.len = w;
  P->pos = i + (size_t)w;
  P->tk = t;
}

/* ----------------------------------------------------------------- parser */

static ms__ast *node(parser *P, ms__ast_kind kind, int op, int offset, int n_args) {
  ms__ast *n = ms__arena_alloc(P->a, sizeof *n);
  if (!n) {
    P->E->nomem = 1;
    return NULL;
  }
  n->kind = kind;
  n->op = op;
  n->offset = offset;
  n->n_args = n_args;
  if (n_args > 0) {
    n->args = ms__arena_alloc(P->a, (size_t)n_args * sizeof *n->args);
    if (!n->args) {
      P->E->nomem = 1;
      return NULL;
    }
  }
  return n;
}

static int stop(parser *P) { return P->failed || P->E->nomem; }

/* Records the depth of a finished node; reports when it is too deep. */
static ms__ast *done(parser *P, ms__ast *n) {
  if (!n) return NULL;
  int d = 0;
  for (int i = 0; i < n->n_args; i++)
    if (n->args[i] && n->args[i]->depth > d) d = n->args[i]->depth;
  n->depth = d + 1;
  if (n->depth > MS__EXPR_MAX_DEPTH) {
    syntax(P, n->offset, "expression is too deep (more than %d nested operations)",
           MS__EXPR_MAX_DEPTH);
    return NULL;
  }
  return n;
}

/* The binary node l op r at offset off, checked by done(). */
static ms__ast *binary(parser *P, int op, int off, ms__ast *l, ms__ast *r) {
  ms__ast *n = node(P, MS__AST_BINARY, op, off, 2);
  if (!n) return NULL;
  n->args[0] = l;
  n->args[1] = r;
  return done(P, n);
}

static int enter(parser *P) {
  if (++P->nest > MS__EXPR_MAX_NEST) {
    syntax(P, P->tk.offset, "expression is nested too deeply (more than %d levels)",
           MS__EXPR_MAX_NEST);
    return 0;
  }
  return 1;
}

static ms__ast *p_or(parser *P);
static ms__ast *p_unary(parser *P);

static void unexpected(parser *P) {
  if (P->tk.kind == MS__TK_END)
    syntax(P, P->tk.offset, "unexpected end of expression");
  else if (P->tk.kind == MS__TK_NAME || P->tk.kind == MS__TK_NUM || P->tk.kind == MS__TK_STR)
    syntax(P, P->tk.offset, "unexpected %s '%.*s' (missing operator?)", tk_text(P->tk.kind),
           P->tk.len, P->src + P->tk.offset);
  else
    syntax(P, P->tk.offset, "unexpected %s", tk_text(P->tk.kind));
}

/* Comma-separated expressions up to ')' (the '(' already consumed). */
static int p_list(parser *P, int open_offset, ms__ast ***items, int *n_items, int allow_empty) {
  ms__ast *tmp[256];
  int n = 0;
  if (P->tk.kind == MS__TK_RP && allow_empty) {
    next(P);
    *items = NULL;
    *n_items = 0;
    return 0;
  }
  for (;;) {
    ms__ast *e = p_or(P);
    if (stop(P)) return -1;
    if (n == 256) {
      syntax(P, P->tk.offset, "too many items (at most 256)");
      return -1;
    }
    tmp[n++] = e;
    if (P->tk.kind == MS__TK_COMMA) {
      next(P);
      if (P->tk.kind == MS__TK_RP && !allow_empty) {
        next(P); /* trailing comma */
        break;
      }
      continue;
    }
    if (P->tk.kind == MS__TK_RP) {
      next(P);
      break;
    }
    if (P->tk.kind == MS__TK_END) {
      int l, c;
      ms__expr_pos_of(P->E->o, open_offset, &l, &c);
      syntax(P, P->tk.offset, "expected ')' to close '(' at column %d", c);
    } else {
      syntax(P, P->tk.offset, "expected ',' or ')', found %s", tk_text(P->tk.kind));
    }
    return -1;
  }
  ms__ast **arr = ms__arena_alloc(P->a, (size_t)(n ? n : 1) * sizeof *arr);
  if (!arr) {
    P->E->nomem = 1;
    return -1;
  }
  memcpy(arr, tmp, (size_t)n * sizeof *arr);
  *items = arr;
  *n_items = n;
  return 0;
}

static ms__ast *p_atom(parser *P) {
  token t = P->tk;
  switch (t.kind) {
    case MS__TK_NUM: {
      next(P);
      ms__ast *n = node(P, MS__AST_NUM, 0, t.offset, 0);
      if (n) n->num = t.num;
      return n;
    }
    case MS__TK_STR: {
      next(P);
      ms__ast *n = node(P, MS__AST_STR, 0, t.offset, 0);
      if (n) n->str = t.str;
      return n;
    }
    case MS__TK_TRUE:
    case MS__TK_FALSE: {
      next(P);
      ms__ast *n = node(P, MS__AST_BOOL, 0, t.offset, 0);
      if (n) n->num = t.kind == MS__TK_TRUE;
      return n;
    }
    case MS__TK_NAME: {
      next(P);
      if (P->tk.kind == MS__TK_LP) {
        int open = P->tk.offset;
        next(P);
        ms__ast **items = NULL;
        int n_items = 0;
        if (p_list(P, open, &items, &n_items, 1) < 0) return NULL;
        ms__ast *n = node(P, MS__AST_CALL, 0, t.offset, 0);
        if (!n) return NULL;
        n->str = t.str;
        n->args = items;
        n->n_args = n_items;
        return done(P, n);
      }
      ms__ast *n = node(P, MS__AST_NAME, 0, t.offset, 0);
      if (n) n->str = t.str;
      return n;
    }
    case MS__TK_LP: {
      next(P);
      ms__ast *e = p_or(P);
      if (stop(P)) return NULL;
      if (P->tk.kind != MS__TK_RP) {
        if (P->tk.kind == MS__TK_END) {
          int l, c;
          ms__expr_pos_of(P->E->o, t.offset, &l, &c);
          syntax(P, P->tk.offset, "expected ')' to close '(' at column %d", c);
        } else {
          syntax(P, P->tk.offset, "expected ')', found %s", tk_text(P->tk.kind));
        }
        return NULL;
      }
      next(P);
      return e;
    }
    default:
      unexpected(P);
      return NULL;
  }
}

static ms__ast *p_power(parser *P) {
  ms__ast *l = p_atom(P);
  if (stop(P)) return NULL;
  if (P->tk.kind == MS__TK_POW) {
    int off = P->tk.offset;
    /* Right recursion: a ^ b ^ c ... nests one call per operator. */
    if (!enter(P)) return NULL;
    next(P);
    ms__ast *r = p_unary(P); /* right-associative, allows 2^-1 */
    P->nest--;
    if (stop(P)) return NULL;
    return binary(P, MS__TK_POW, off, l, r);
  }
  return l;
}

/* The prefix operator op at the current token, applied to what operand
 * parses after it. */
static ms__ast *prefix(parser *P, int op, ms__ast *(*operand)(parser *P)) {
  int off = P->tk.offset;
  if (!enter(P)) return NULL;
  next(P);
  ms__ast *x = operand(P);
  P->nest--;
  if (stop(P)) return NULL;
  ms__ast *n = node(P, MS__AST_UNARY, op, off, 1);
  if (n) n->args[0] = x;
  return done(P, n);
}

static ms__ast *p_unary(parser *P) {
  if (P->tk.kind == MS__TK_SUB || P->tk.kind == MS__TK_ADD)
    return prefix(P, P->tk.kind == MS__TK_SUB ? '-' : '+', p_unary);
  return p_power(P);
}

static ms__ast *p_binary_level(parser *P, int level);

static ms__ast *p_mul(parser *P) { return p_binary_level(P, 0); }
static ms__ast *p_add(parser *P) { return p_binary_level(P, 1); }

static ms__ast *p_binary_level(parser *P, int level) {
  ms__ast *l = level == 0 ? p_unary(P) : p_mul(P);
  if (stop(P)) return NULL;
  for (;;) {
    int k = P->tk.kind;
    int ok = level == 0 ? (k == MS__TK_MUL || k == MS__TK_DIV || k == MS__TK_MOD)
                        : (k == MS__TK_ADD || k == MS__TK_SUB);
    if (!ok) return l;
    int off = P->tk.offset;
    next(P);
    ms__ast *r = level == 0 ? p_unary(P) : p_mul(P);
    if (stop(P)) return NULL;
    l = binary(P, k, off, l, r);
    if (!l) return NULL;
  }
}

static int is_cmp(int k) { return k >= MS__TK_EQ && k <= MS__TK_GE; }

static ms__ast *p_cmp(parser *P) {
  ms__ast *l = p_add(P);
  if (stop(P)) return NULL;
  int k = P->tk.kind;
  if (is_cmp(k)) {
    int off = P->tk.offset;
    next(P);
    ms__ast *r = p_add(P);
    if (stop(P)) return NULL;
    l = binary(P, k, off, l, r);
    if (!l) return NULL;
  } else if (k == MS__TK_IN || (k == MS__TK_NOT && P->pos < P->len)) {
    int negate = 0, off = P->tk.offset;
    if (k == MS__TK_NOT) {
      /* "x not in (...)": look ahead for 'in'. */
      size_t save = P->pos;
      token save_tk = P->tk;
      next(P);
      if (P->tk.kind != MS__TK_IN) {
        P->pos = save;
        P->tk = save_tk;
        return l;
      }
      negate = 1;
    }
    next(P);
    if (P->tk.kind != MS__TK_LP) {
      syntax(P, P->tk.offset, "expected '(' after 'in'");
      return NULL;
    }
    int open = P->tk.offset;
    next(P);
    ms__ast **items = NULL;
    int n_items = 0;
    if (p_list(P, open, &items, &n_items, 0) < 0) return NULL;
    ms__ast *n = node(P, MS__AST_IN, 0, off, 1 + n_items);
    if (!n) return NULL;
    n->negate = negate;
    n->args[0] = l;
    for (int i = 0; i < n_items; i++) n->args[1 + i] = items[i];
    l = done(P, n);
    if (!l) return NULL;
  } else {
    return l;
  }
  if (is_cmp(P->tk.kind) || P->tk.kind == MS__TK_IN) {
    syntax(P, P->tk.offset,
           "comparisons cannot be chained; combine them with 'and' (a < b and b < c)");
    return NULL;
  }
  return l;
}

static ms__ast *p_not(parser *P) {
  if (P->tk.kind == MS__TK_NOT) return prefix(P, 'n', p_not);
  return p_cmp(P);
}

static ms__ast *p_logic(parser *P, int kind) {
  ms__ast *l = kind == MS__TK_AND ? p_not(P) : p_logic(P, MS__TK_AND);
  if (stop(P)) return NULL;
  while (P->tk.kind == kind) {
    int off = P->tk.offset;
    next(P);
    ms__ast *r = kind == MS__TK_AND ? p_not(P) : p_logic(P, MS__TK_AND);
    if (stop(P)) return NULL;
    l = binary(P, kind, off, l, r);
    if (!l) return NULL;
  }
  return l;
}

static ms__ast *p_or(parser *P) {
  if (!enter(P)) return NULL;
  ms__ast *n = p_logic(P, MS__TK_OR);
  P->nest--;
  return n;
}

ms__ast *ms__expr_parse(const char *src, ms__arena *a, ms__expr_errs *E) {
  parser P = {.src = src, .len = strlen(src), .a = a, .E = E};
  next(&P);
  if (P.tk.kind == MS__TK_END && !stop(&P)) {
    syntax(&P, 0, "empty expression");
    return NULL;
  }
  ms__ast *root = p_or(&P);
  if (stop(&P)) return NULL;
  if (P.tk.kind != MS__TK_END) {
    if (P.tk.kind == MS__TK_RP)
      syntax(&P, P.tk.offset, "unmatched ')'");
    else
      unexpected(&P);
    return NULL;
  }
  return root;
}

/* ------------------------------------------------------------- scan_names */

static int collect(const ms__ast *n, char ***names, size_t *count, size_t *cap) {
  if (!n) return 0;
  if (n->kind == MS__AST_NAME) {
    for (size_t i = 0; i < *count; i++)
      if (!strcmp((*names)[i], n->str)) return 0;
    if (*count == *cap) {
      size_t nc = *cap ? *cap * 2 : 8;
      char **nn = ms__realloc(*names, nc * sizeof *nn);
      if (!nn) return -1;
      *names = nn;
      *cap = nc;
    }
    char *s = ms__strdup(n->str);
    if (!s) return -1;
    (*names)[(*count)++] = s;
    return 0;
  }
  for (int i = 0; i < n->n_args; i++)
    if (collect(n->args[i], names, count, cap) < 0) return -1;
  return 0;
}

void ms__expr_names_free(char **names, size_t n_names) {
  if (!names) return;
  for (size_t i = 0; i < n_names; i++) free(names[i]);
  free(names);
}

ms_status ms__expr_scan_names(const char *src, const ms__expr_compile_params *o, char ***names,
                              size_t *n_names, ms_diag *d) {
  *names = NULL;
  *n_names = 0;
  ms__expr_compile_params def;
  if (!o) {
    ms__expr_compile_params_init(&def);
    o = &def;
  }
  if (!src) return ms_diag_add(d, MS_ERR_INVALID, o->file, o->line, o->column, o->where,
                               "expression is missing");
  ms__arena a = {0};
  ms__expr_errs E = {.o = o, .d = d};
  size_t first = d ? d->count : 0;
  ms__ast *root = ms__expr_parse(src, &a, &E);
  ms_status st = MS_OK;
  if (E.nomem || a.failed) {
    st = MS_ERR_NOMEM;
  } else if (!root) {
    st = MS_ERR_SPEC;
  } else {
    size_t cap = 0;
    if (collect(root, names, n_names, &cap) < 0) {
      ms__expr_names_free(*names, *n_names);
      *names = NULL;
      *n_names = 0;
      st = MS_ERR_NOMEM;
    }
  }
  if (st == MS_ERR_NOMEM) {
    ms__diag_truncate(d, first); /* syntax errors may be consequences */
    ms_diag_add(d, st, o->file, o->line, o->column, o->where, "out of memory reading expression");
  }
  ms__arena_free(&a);
  return st;
}
