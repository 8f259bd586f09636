/* Expression compiler: resolves names, type-checks the AST, emits typed
 * instructions in post-order, folds constants, drops unreachable
 * instructions; plus the accessors of a compiled expression.
 *
 * Invariants: an instruction's operands are earlier instructions; the
 * result is the last instruction after compaction. A subtree whose operands
 * are all constants is evaluated at compile time with the evaluator itself
 * (ms__expr_run_one), so folding can never disagree with evaluation; a
 * folded error (1/0) stays a constant in the error state and fires only for
 * rows that use it (an untaken if() branch does not), except when the whole
 * expression folds to it, which is then a compile error.
 *
 * Type errors are reported for every independent subexpression; a subtree
 * that already failed has the pseudo-type "error" and raises nothing
 * further, so one mistake produces one message. */
#include <math.h>
#include "core/alloc.h"
#include "core/names.h"
#include "core/diag.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "records/expr_internal.h"

#define T_ERR MS__EXPR_TYPE_COUNT

typedef struct {
  int reg;
  int t; /* ms__expr_type or T_ERR */
  const char *const *cats;
  size_t n_cats;
  const char *field; /* categorical from a name: its name, for messages */
} val;

typedef struct {
  char *name;
  int status; /* 1 known, 0 unknown (reported), -1 resolver error */
  int reg;
  val v;
} symcache;

typedef struct {
  ms__expr *e;
  size_t cap_ins;
  const ms__expr_resolver *r;
  ms__expr_errs E;
  symcache *syms;
  size_t n_syms, cap_syms;
} comp;

static const val VERR = {-1, T_ERR, NULL, 0, NULL};

/* ------------------------------------------------------------ type names */

static const char *const type_names[] = {"number", "bool",     "string",   "categorical",
                                         "date",   "datetime", "duration", "any"};
_Static_assert(sizeof type_names / sizeof *type_names == MS__EXPR_TYPE_COUNT,
               "one name per expression type");

const char *ms__expr_type_name(ms__expr_type t) {
  return ms__name_of(type_names, MS__EXPR_TYPE_COUNT, (int)t, "?");
}

ms__expr_type ms__expr_type_from_name(const char *name) {
  if (!name) return MS__EXPR_TYPE_COUNT;
  for (int i = 0; i < MS__EXPR_TYPE_COUNT; i++)
    if (!strcmp(name, type_names[i])) return (ms__expr_type)i;
  return MS__EXPR_TYPE_COUNT;
}

size_t ms__expr_type_size(ms__expr_type t) {
  switch (t) {
    case MS__EXPR_BOOL: return 1;
    case MS__EXPR_CATEGORICAL:
    case MS__EXPR_DATE: return 4;
    case MS__EXPR_STRING: return sizeof(const char *);
    default: return 8;
  }
}

static const char *tname(int t) { return t == T_ERR ? "error" : ms__expr_type_name(t); }

void ms__expr_compile_params_init(ms__expr_compile_params *o) {
  memset(o, 0, sizeof *o);
  o->want = MS__EXPR_ANY;
}

/* ------------------------------------------------------------ pool, emit */

static void *pool_add(comp *C, void *p) {
  ms__expr *e = C->e;
  if (!p) {
    C->E.nomem = 1;
    return NULL;
  }
  if (e->n_pool == e->cap_pool) {
    size_t nc = e->cap_pool ? e->cap_pool * 2 : 16;
    void **np = ms__realloc(e->pool, nc * sizeof *np);
    if (!np) {
      free(p);
      C->E.nomem = 1;
      return NULL;
    }
    e->pool = np;
    e->cap_pool = nc;
  }
  e->pool[e->n_pool++] = p;
  return p;
}

static char *pool_strdup(comp *C, const char *s) { return pool_add(C, ms__strdup(s ? s : "")); }
static void *pool_calloc(comp *C, size_t n, size_t size) {
  return pool_add(C, ms__calloc(n ? n : 1, size));
}

static int new_ins(comp *C, int op, int type, int a, int b, int c, int offset) {
  ms__expr *e = C->e;
  if (C->E.nomem) return -1;
  if (e->n_ins == C->cap_ins) {
    size_t nc = C->cap_ins ? C->cap_ins * 2 : 32;
    ms__ins *ni = ms__realloc(e->ins, nc * sizeof *ni);
    if (!ni) {
      C->E.nomem = 1;
      return -1;
    }
    e->ins = ni;
    C->cap_ins = nc;
  }
  ms__ins *I = &e->ins[e->n_ins];
  memset(I, 0, sizeof *I);
  I->op = (uint16_t)op;
  I->type = (uint8_t)type;
  I->a = a;
  I->b = b;
  I->c = c;
  I->offset = offset;
  I->slot = -1;
  return (int)e->n_ins++;
}

static int is_const(comp *C, int reg) { return reg >= 0 && C->e->ins[reg].op == MS__OP_CONST; }

static int const_num(comp *C, double x, int offset) {
  int r = new_ins(C, MS__OP_CONST, MS__EXPR_NUMBER, -1, -1, -1, offset);
  if (r >= 0) {
    C->e->ins[r].kf = x;
    C->e->ins[r].kstate = MS__ST_PRESENT;
  }
  return r;
}

/* Evaluates instruction r (all operands constant) and turns it into a
 * constant. */
static void fold(comp *C, int r) {
  ms__expr *e = C->e;
  ms__ins *I = &e->ins[r];
  int ops[3] = {I->a, I->b, I->c};
  union {
    double d;
    int64_t i;
    int32_t i32;
    uint8_t b;
    const char *s;
  } store[4];
  uint8_t st[4];
  memset(store, 0, sizeof store);
  ms__reg *R = ms__calloc(e->n_ins, sizeof *R);
  if (!R) {
    C->E.nomem = 1;
    return;
  }
  for (int k = 0; k < 3; k++) {
    if (ops[k] < 0) continue;
    R[ops[k]].v = &store[k];
    R[ops[k]].s = &st[k];
    ms__expr_fill_consts_one(e, (size_t)ops[k], &R[ops[k]], 1);
  }
  R[r].v = &store[3];
  R[r].s = &st[3];
  ms__expr_run_one(e, (size_t)r, NULL, 0, 1, R);
  uint8_t s = st[3];
  ms__ins K = *I;
  K.op = MS__OP_CONST;
  K.a = K.b = K.c = -1;
  K.kstate = s;
  if (s == MS__ST_PRESENT) {
    switch (I->type) {
      case MS__EXPR_NUMBER:
      case MS__EXPR_DURATION: K.kf = store[3].d; break;
      case MS__EXPR_BOOL: K.ki = store[3].b; break;
      case MS__EXPR_CATEGORICAL:
      case MS__EXPR_DATE: K.ki = store[3].i32; break;
      case MS__EXPR_DATETIME: K.ki = store[3].i; break;
      case MS__EXPR_STRING: K.ks = store[3].s; break;
      default: break;
    }
  } else if (s == MS__ST_ERROR) {
    /* Which operand carried the error in, if any (if() picks its branch). */
    int from = -1;
    if (I->op == MS__OP_IF) {
      int ci = ops[0];
      if (st[0] == MS__ST_ERROR) from = ci;
      else if (st[0] == MS__ST_PRESENT) from = store[0].b ? ops[1] : ops[2];
      if (from >= 0 && e->ins[from].kstate != MS__ST_ERROR) from = -1;
    } else {
      for (int k = 0; k < 3 && from < 0; k++)
        if (ops[k] >= 0 && st[k] == MS__ST_ERROR) from = ops[k];
    }
    if (from >= 0) {
      K.kstatus = e->ins[from].kstatus;
      K.kmsg = e->ins[from].kmsg;
      K.offset = e->ins[from].offset;
    } else {
      char msg[192];
      K.kstatus = ms__expr_describe(e, (size_t)r, R, msg, sizeof msg);
      K.kmsg = pool_strdup(C, msg);
    }
  }
  free(R);
  e->ins[r] = K;
}

/* Emits an operation; folds it when every operand is constant. */
static int emit_s(comp *C, int op, int type, int a, int b, int c, int offset, int sub) {
  int r = new_ins(C, op, type, a, b, c, offset);
  if (r < 0) return -1;
  C->e->ins[r].sub = (uint8_t)sub;
  if ((a < 0 || is_const(C, a)) && (b < 0 || is_const(C, b)) && (c < 0 || is_const(C, c)) &&
      (a >= 0 || b >= 0 || c >= 0))
    fold(C, r);
  return r;
}

static int emit(comp *C, int op, int type, int a, int b, int c, int offset) {
  return emit_s(C, op, type, a, b, c, offset, 0);
}

static val mk(int reg, int t) {
  val v = {reg, reg < 0 ? T_ERR : t, NULL, 0, NULL};
  return v;
}

/* ------------------------------------------------------------- helpers */

static int ast_start(const ms__ast *n) {
  int o = n->offset;
  for (int i = 0; i < n->n_args; i++) {
    int s = ast_start(n->args[i]);
    if (s < o) o = s;
  }
  return o;
}

static int same_cats(const val *a, const val *b) {
  if (a->cats == b->cats) return 1;
  if (a->n_cats != b->n_cats) return 0;
  for (size_t i = 0; i < a->n_cats; i++)
    if (strcmp(a->cats[i], b->cats[i])) return 0;
  return 1;
}

/* CAT_TO_STR needs its table before folding, so it is built by hand. */
static val cat_to_string(comp *C, val v, int offset) {
  if (v.t != MS__EXPR_CATEGORICAL) return v;
  int r = new_ins(C, MS__OP_CAT_TO_STR, MS__EXPR_STRING, v.reg, -1, -1, offset);
  if (r < 0) return VERR;
  C->e->ins[r].p1 = v.cats;
  C->e->ins[r].n1 = (int64_t)v.n_cats;
  if (is_const(C, v.reg)) fold(C, r);
  return mk(r, MS__EXPR_STRING);
}

static val to_datetime(comp *C, val v, int offset) {
  if (v.t != MS__EXPR_DATE) return v;
  return mk(emit(C, MS__OP_DATE_TO_DT, MS__EXPR_DATETIME, v.reg, -1, -1, offset),
            MS__EXPR_DATETIME);
}

/* Lists up to 12 labels: "'F', 'M'" or "'a', 'b', ... (240 in all)". */
static void list_cats(const val *v, char *buf, size_t cap) {
  size_t len = 0;
  buf[0] = 0;
  size_t show = v->n_cats < 12 ? v->n_cats : 12;
  for (size_t i = 0; i < show && len < cap; i++)
    len += (size_t)snprintf(buf + len, cap - len, "%s'%s'", i ? ", " : "", v->cats[i]);
  if (show < v->n_cats && len < cap)
    snprintf(buf + len, cap - len, ", ... (%zu in all)", v->n_cats);
}

/* Code of a label, or -1 after reporting it. */
static int cat_code(comp *C, const val *v, const char *label, int offset) {
  for (size_t i = 0; i < v->n_cats; i++)
    if (!strcmp(v->cats[i], label)) return (int)i;
  char list[512];
  list_cats(v, list, sizeof list);
  const char *best = NULL;
  int bd = 3;
  /* a suggestion must keep part of the label: 'X' is not "close" to 'F' */
  int len = (int)strlen(label);
  for (size_t i = 0; i < v->n_cats; i++) {
    int dist = ms__expr_edit_distance(label, v->cats[i], 2);
    if (dist < bd && dist < len) {
      bd = dist;
      best = v->cats[i];
    }
  }
  char hint[160] = "";
  if (best) snprintf(hint, sizeof hint, "; did you mean '%s'?", best);
  if (v->field)
    ms__expr_err(&C->E, offset, "'%s' is not a category of %s (categories: %s)%s", label,
                 v->field, list, hint);
  else
    ms__expr_err(&C->E, offset, "'%s' is not one of the categories %s%s", label, list, hint);
  return -1;
}

/* --------------------------------------------------------------- names */

static const char *const function_names[] = {
    "if",     "min",   "max",   "abs",      "log",      "log10",        "exp",
    "sqrt",   "pow",   "round", "floor",    "ceil",     "clamp",        "date",
    "datetime", "days", "years", "hours",   "minutes",  "year",         "month",
    "day",    "years_between",  "startswith", "is_missing", "coalesce", "lookup",
    "lookup_number", NULL};

static int is_function(const char *s) {
  for (int i = 0; function_names[i]; i++)
    if (!strcmp(function_names[i], s)) return 1;
  return 0;
}

static int valid_layout(ms__expr_type t, ms__expr_layout l) {
  switch (t) {
    case MS__EXPR_NUMBER:
      return l == MS__EXPR_LAYOUT_F64 || l == MS__EXPR_LAYOUT_I64 || l == MS__EXPR_LAYOUT_I32;
    case MS__EXPR_DURATION: return l == MS__EXPR_LAYOUT_F64;
    case MS__EXPR_BOOL: return l == MS__EXPR_LAYOUT_U8;
    case MS__EXPR_STRING:
      return l == MS__EXPR_LAYOUT_STR_FIXED || l == MS__EXPR_LAYOUT_STR_PTR;
    case MS__EXPR_CATEGORICAL:
    case MS__EXPR_DATE: return l == MS__EXPR_LAYOUT_I32;
    case MS__EXPR_DATETIME: return l == MS__EXPR_LAYOUT_I64;
    default: return 0;
  }
}

static void add_name(comp *C, const char *name) {
  ms__expr *e = C->e;
  for (size_t i = 0; i < e->n_names; i++)
    if (!strcmp(e->names[i], name)) return;
  char **nn = ms__realloc(e->names, (e->n_names + 1) * sizeof *nn);
  if (!nn) {
    C->E.nomem = 1;
    return;
  }
  e->names = nn;
  char *s = ms__strdup(name);
  if (!s) {
    C->E.nomem = 1;
    return;
  }
  e->names[e->n_names++] = s;
}

static void suggest_unknown(comp *C, const char *name, int offset, const char *what) {
  const char *best = NULL;
  int len = (int)strlen(name);
  int maxd = len <= 3 ? 1 : len <= 6 ? 2 : 3;
  int bd = maxd + 1;
  if (C->r && C->r->name_at) {
    for (size_t i = 0;; i++) {
      const char *cand = C->r->name_at(C->r->ctx, i);
      if (!cand) break;
      int dist = ms__expr_edit_distance(name, cand, maxd);
      if (dist < bd) {
        bd = dist;
        best = cand;
      }
    }
  }
  if (best)
    ms__expr_err(&C->E, offset, "unknown %s '%s' (did you mean '%s'?)", what, name, best);
  else
    ms__expr_err(&C->E, offset, "unknown %s '%s'", what, name);
}

static val emit_name(comp *C, const ms__ast *n) {
  for (size_t i = 0; i < C->n_syms; i++)
    if (!strcmp(C->syms[i].name, n->str)) return C->syms[i].status == 1 ? C->syms[i].v : VERR;
  if (C->n_syms == C->cap_syms) {
    size_t nc = C->cap_syms ? C->cap_syms * 2 : 8;
    symcache *ns = ms__realloc(C->syms, nc * sizeof *ns);
    if (!ns) {
      C->E.nomem = 1;
      return VERR;
    }
    C->syms = ns;
    C->cap_syms = nc;
  }
  symcache *sc = &C->syms[C->n_syms];
  memset(sc, 0, sizeof *sc);
  sc->name = ms__strdup(n->str);
  if (!sc->name) {
    C->E.nomem = 1;
    return VERR;
  }
  C->n_syms++;
  sc->v = VERR;
  ms__expr_symbol sym;
  memset(&sym, 0, sizeof sym);
  sym.slot = -1;
  int line, col;
  ms__expr_pos_of(C->E.o, n->offset, &line, &col);
  ms__expr_pos pos = {C->E.o->file, line, col, C->E.o->where};
  int rs = 0;
  if (C->r && C->r->resolve) rs = C->r->resolve(C->r->ctx, n->str, &sym, C->E.d, &pos);
  if (rs < 0) {
    sc->status = -1;
    C->E.n_errors++;
    return VERR;
  }
  if (rs == 0) {
    sc->status = 0;
    if (is_function(n->str))
      ms__expr_err(&C->E, n->offset, "'%s' is a function; call it as %s(...)", n->str, n->str);
    else
      suggest_unknown(C, n->str, n->offset, "field");
    return VERR;
  }
  ms__expr_type t = sym.type;
  if ((unsigned)t >= MS__EXPR_ANY) {
    ms_diag_add(C->E.d, MS_ERR_INVALID, pos.file, pos.line, pos.column, pos.where,
                "name '%s' resolved to an invalid type", n->str);
    C->E.n_errors++;
    sc->status = -1;
    return VERR;
  }
  val v = {-1, t, NULL, 0, NULL};
  if (t == MS__EXPR_CATEGORICAL) {
    char **labels = pool_calloc(C, sym.n_categories, sizeof *labels);
    if (!labels) return VERR;
    for (size_t i = 0; i < sym.n_categories; i++) {
      labels[i] = pool_strdup(C, sym.categories ? sym.categories[i] : "");
      if (!labels[i]) return VERR;
    }
    v.cats = (const char *const *)labels;
    v.n_cats = sym.n_categories;
    v.field = pool_strdup(C, n->str);
  }
  if (sym.slot >= 0) {
    if (!valid_layout(t, sym.layout)) {
      ms_diag_add(C->E.d, MS_ERR_INVALID, pos.file, pos.line, pos.column, pos.where,
                  "name '%s' resolved to a %s slot with an invalid layout", n->str,
                  ms__expr_type_name(t));
      C->E.n_errors++;
      sc->status = -1;
      return VERR;
    }
    int r = new_ins(C, MS__OP_LOAD, t, -1, -1, -1, n->offset);
    if (r < 0) return VERR;
    ms__ins *I = &C->e->ins[r];
    I->slot = sym.slot;
    I->layout = (uint8_t)sym.layout;
    I->width = sym.str_width;
    I->n1 = (int64_t)v.n_cats;
    I->kmsg = pool_strdup(C, n->str);
    if ((size_t)sym.slot + 1 > C->e->n_slots) C->e->n_slots = (size_t)sym.slot + 1;
    v.reg = r;
  } else {
    int r = new_ins(C, MS__OP_CONST, t, -1, -1, -1, n->offset);
    if (r < 0) return VERR;
    ms__ins *I = &C->e->ins[r];
    I->kstate = sym.value.missing ? MS__ST_MISSING : MS__ST_PRESENT;
    I->kf = sym.value.num;
    I->ki = sym.value.i;
    if (t == MS__EXPR_STRING) {
      I->ks = pool_strdup(C, sym.value.str);
      if (!I->ks) return VERR;
    }
    if (t == MS__EXPR_NUMBER || t == MS__EXPR_DURATION) {
      if (!sym.value.missing && !(fabs(sym.value.num) <= 1.7976931348623157e308)) {
        ms__expr_err(&C->E, n->offset, "constant '%s' is not a finite number", n->str);
        sc->status = -1;
        return VERR;
      }
    }
    if (t == MS__EXPR_CATEGORICAL && !sym.value.missing &&
        (sym.value.i < 0 || (size_t)sym.value.i >= v.n_cats)) {
      ms__expr_err(&C->E, n->offset, "constant '%s' has a category code out of range", n->str);
      sc->status = -1;
      return VERR;
    }
    v.reg = r;
  }
  add_name(C, n->str);
  sc->status = 1;
  sc->v = v;
  return v;
}

/* ------------------------------------------------------------ operators */

static int is_cmp(int k) { return k >= MS__TK_EQ && k <= MS__TK_GE; }
static int numeric(int t) { return t == MS__EXPR_NUMBER; }

static val emit_ast(comp *C, const ms__ast *n);

static val arith(comp *C, int op, val a, val b, int offset) {
  if (a.t == T_ERR || b.t == T_ERR) return VERR;
  int ta = a.t, tb = b.t;
  const char *what = NULL;
  switch (op) {
    case MS__TK_ADD:
      if (ta == MS__EXPR_NUMBER && tb == MS__EXPR_NUMBER)
        return mk(emit(C, MS__OP_ADD, ta, a.reg, b.reg, -1, offset), ta);
      if (ta == MS__EXPR_DURATION && tb == MS__EXPR_DURATION)
        return mk(emit(C, MS__OP_ADD, ta, a.reg, b.reg, -1, offset), ta);
      if (tb == MS__EXPR_DURATION && (ta == MS__EXPR_DATE || ta == MS__EXPR_DATETIME))
        return mk(emit(C, ta == MS__EXPR_DATE ? MS__OP_DATE_ADD : MS__OP_DT_ADD, ta, a.reg,
                       b.reg, -1, offset),
                  ta);
      if (ta == MS__EXPR_DURATION && (tb == MS__EXPR_DATE || tb == MS__EXPR_DATETIME))
        return mk(emit(C, tb == MS__EXPR_DATE ? MS__OP_DATE_ADD : MS__OP_DT_ADD, tb, b.reg,
                       a.reg, -1, offset),
                  tb);
      what = "add";
      break;
    case MS__TK_SUB:
      if ((ta == MS__EXPR_NUMBER || ta == MS__EXPR_DURATION) && tb == ta)
        return mk(emit(C, MS__OP_SUB, ta, a.reg, b.reg, -1, offset), ta);
      if (tb == MS__EXPR_DURATION && (ta == MS__EXPR_DATE || ta == MS__EXPR_DATETIME))
        return mk(emit_s(C, ta == MS__EXPR_DATE ? MS__OP_DATE_ADD : MS__OP_DT_ADD, ta, a.reg,
                         b.reg, -1, offset, 1),
                  ta);
      if (ta == MS__EXPR_DATE && tb == MS__EXPR_DATE)
        return mk(emit(C, MS__OP_DATE_DIFF, MS__EXPR_NUMBER, a.reg, b.reg, -1, offset),
                  MS__EXPR_NUMBER);
      if ((ta == MS__EXPR_DATE || ta == MS__EXPR_DATETIME) &&
          (tb == MS__EXPR_DATE || tb == MS__EXPR_DATETIME)) {
        a = to_datetime(C, a, offset);
        b = to_datetime(C, b, offset);
        return mk(emit(C, MS__OP_DT_DIFF, MS__EXPR_NUMBER, a.reg, b.reg, -1, offset),
                  MS__EXPR_NUMBER);
      }
      if ((ta == MS__EXPR_DATE || ta == MS__EXPR_DATETIME) && tb == MS__EXPR_NUMBER) {
        ms__expr_err(&C->E, offset, "cannot subtract number from %s (use days(n) or years(n))",
                     tname(ta));
        return VERR;
      }
      ms__expr_err(&C->E, offset, "cannot subtract %s from %s", tname(tb), tname(ta));
      return VERR;
    case MS__TK_MUL:
      if (ta == MS__EXPR_NUMBER && tb == MS__EXPR_NUMBER)
        return mk(emit(C, MS__OP_MUL, ta, a.reg, b.reg, -1, offset), ta);
      if ((ta == MS__EXPR_DURATION && tb == MS__EXPR_NUMBER) ||
          (ta == MS__EXPR_NUMBER && tb == MS__EXPR_DURATION))
        return mk(emit(C, MS__OP_MUL, MS__EXPR_DURATION, a.reg, b.reg, -1, offset),
                  MS__EXPR_DURATION);
      what = "multiply";
      break;
    case MS__TK_DIV:
      if (ta == MS__EXPR_NUMBER && tb == MS__EXPR_NUMBER)
        return mk(emit(C, MS__OP_DIV, ta, a.reg, b.reg, -1, offset), ta);
      if (ta == MS__EXPR_DURATION && tb == MS__EXPR_NUMBER)
        return mk(emit(C, MS__OP_DIV, ta, a.reg, b.reg, -1, offset), ta);
      if (ta == MS__EXPR_DURATION && tb == MS__EXPR_DURATION)
        return mk(emit(C, MS__OP_DIV, MS__EXPR_NUMBER, a.reg, b.reg, -1, offset),
                  MS__EXPR_NUMBER);
      ms__expr_err(&C->E, offset, "cannot divide %s by %s", tname(ta), tname(tb));
      return VERR;
    case MS__TK_MOD:
      if (numeric(ta) && numeric(tb))
        return mk(emit(C, MS__OP_MOD, ta, a.reg, b.reg, -1, offset), ta);
      ms__expr_err(&C->E, offset, "cannot take %s modulo %s", tname(ta), tname(tb));
      return VERR;
    case MS__TK_POW:
      if (numeric(ta) && numeric(tb)) {
        if (is_const(C, b.reg) && C->e->ins[b.reg].kstate == MS__ST_PRESENT &&
            C->e->ins[b.reg].kf == 2.0)
          return mk(emit(C, MS__OP_SQUARE, ta, a.reg, -1, -1, offset), ta);
        return mk(emit(C, MS__OP_POW, ta, a.reg, b.reg, -1, offset), ta);
      }
      ms__expr_err(&C->E, offset, "cannot raise %s to the power %s", tname(ta), tname(tb));
      return VERR;
    default: break;
  }
  if ((ta == MS__EXPR_DATE || ta == MS__EXPR_DATETIME) && tb == MS__EXPR_NUMBER &&
      op == MS__TK_ADD) {
    ms__expr_err(&C->E, offset, "cannot add %s and number (use days(n) or years(n))", tname(ta));
    return VERR;
  }
  ms__expr_err(&C->E, offset, "cannot %s %s and %s", what, tname(ta), tname(tb));
  return VERR;
}

static const char *cmp_text(int op) {
  static const char *const t[] = {"==", "!=", "<", "<=", ">", ">="};
  return t[op - MS__TK_EQ];
}

static val emit_cmp_cls(comp *C, int op, int cls, val a, val b, int offset) {
  int r = new_ins(C, MS__OP_CMP, MS__EXPR_BOOL, a.reg, b.reg, -1, offset);
  if (r < 0) return VERR;
  C->e->ins[r].sub = (uint8_t)((op - MS__TK_EQ) | (cls << 3));
  if (is_const(C, a.reg) && is_const(C, b.reg)) fold(C, r);
  return mk(r, MS__EXPR_BOOL);
}

/* Categorical compared with a constant label: code comparison. */
static val cat_vs_label(comp *C, int op, val cat, val lit, int lit_offset, int offset) {
  const ms__ins *K = &C->e->ins[lit.reg];
  if (K->kstate != MS__ST_PRESENT) {
    /* comparing with a missing constant: missing */
    int r = new_ins(C, MS__OP_CONST, MS__EXPR_BOOL, -1, -1, -1, offset);
    if (r >= 0) C->e->ins[r].kstate = K->kstate;
    return mk(r, MS__EXPR_BOOL);
  }
  int code = cat_code(C, &cat, K->ks, lit_offset);
  if (code < 0) return VERR;
  int kr = new_ins(C, MS__OP_CONST, MS__EXPR_CATEGORICAL, -1, -1, -1, lit_offset);
  if (kr < 0) return VERR;
  C->e->ins[kr].ki = code;
  C->e->ins[kr].kstate = MS__ST_PRESENT;
  val k = mk(kr, MS__EXPR_CATEGORICAL);
  return emit_cmp_cls(C, op, MS__CL_I32, cat, k, offset);
}

static val compare(comp *C, int op, val a, val b, const ms__ast *na, const ms__ast *nb,
                   int offset) {
  if (a.t == T_ERR || b.t == T_ERR) return VERR;
  int eqne = op == MS__TK_EQ || op == MS__TK_NE;
  int ta = a.t, tb = b.t;
  if (ta == MS__EXPR_CATEGORICAL || tb == MS__EXPR_CATEGORICAL) {
    if (!eqne) {
      ms__expr_err(&C->E, offset,
                   "cannot order categorical values with '%s'; use == or != (or 'in')",
                   cmp_text(op));
      return VERR;
    }
    if (ta == MS__EXPR_CATEGORICAL && tb == MS__EXPR_STRING && is_const(C, b.reg))
      return cat_vs_label(C, op, a, b, ast_start(nb), offset);
    if (tb == MS__EXPR_CATEGORICAL && ta == MS__EXPR_STRING && is_const(C, a.reg))
      return cat_vs_label(C, op, b, a, ast_start(na), offset);
    if (ta == MS__EXPR_CATEGORICAL && tb == MS__EXPR_CATEGORICAL && same_cats(&a, &b))
      return emit_cmp_cls(C, op, MS__CL_I32, a, b, offset);
    if ((ta == MS__EXPR_CATEGORICAL || ta == MS__EXPR_STRING) &&
        (tb == MS__EXPR_CATEGORICAL || tb == MS__EXPR_STRING)) {
      a = cat_to_string(C, a, offset);
      b = cat_to_string(C, b, offset);
      if (a.t == T_ERR || b.t == T_ERR) return VERR;
      return emit_cmp_cls(C, op, MS__CL_STR, a, b, offset);
    }
  } else if (ta == tb) {
    switch (ta) {
      case MS__EXPR_NUMBER:
      case MS__EXPR_DURATION: return emit_cmp_cls(C, op, MS__CL_F64, a, b, offset);
      case MS__EXPR_DATE: return emit_cmp_cls(C, op, MS__CL_I32, a, b, offset);
      case MS__EXPR_DATETIME: return emit_cmp_cls(C, op, MS__CL_I64, a, b, offset);
      case MS__EXPR_STRING: return emit_cmp_cls(C, op, MS__CL_STR, a, b, offset);
      case MS__EXPR_BOOL:
        if (eqne) return emit_cmp_cls(C, op, MS__CL_U8, a, b, offset);
        ms__expr_err(&C->E, offset, "cannot order bool values with '%s'", cmp_text(op));
        return VERR;
      default: break;
    }
  } else if ((ta == MS__EXPR_DATE && tb == MS__EXPR_DATETIME) ||
             (ta == MS__EXPR_DATETIME && tb == MS__EXPR_DATE)) {
    a = to_datetime(C, a, offset);
    b = to_datetime(C, b, offset);
    return emit_cmp_cls(C, op, MS__CL_I64, a, b, offset);
  }
  if ((ta == MS__EXPR_DATE || ta == MS__EXPR_DATETIME) && tb == MS__EXPR_STRING &&
      is_const(C, b.reg))
    ms__expr_err(&C->E, offset, "cannot compare %s and string (write date('YYYY-MM-DD'))",
                 tname(ta));
  else if ((tb == MS__EXPR_DATE || tb == MS__EXPR_DATETIME) && ta == MS__EXPR_STRING &&
           is_const(C, a.reg))
    ms__expr_err(&C->E, offset, "cannot compare string and %s (write date('YYYY-MM-DD'))",
                 tname(tb));
  else
    ms__expr_err(&C->E, offset, "cannot compare %s and %s", tname(ta), tname(tb));
  return VERR;
}

static val emit_in(comp *C, const ms__ast *n) {
  val x = emit_ast(C, n->args[0]);
  int n_items = n->n_args - 1;
  val *items = ms__calloc((size_t)n_items, sizeof *items);
  if (!items) {
    C->E.nomem = 1;
    return VERR;
  }
  int bad = x.t == T_ERR;
  for (int i = 0; i < n_items; i++) {
    items[i] = emit_ast(C, n->args[1 + i]);
    if (items[i].t == T_ERR) {
      bad = 1;
      continue;
    }
    if (!is_const(C, items[i].reg) || C->e->ins[items[i].reg].kstate != MS__ST_PRESENT) {
      ms__expr_err(&C->E, ast_start(n->args[1 + i]),
                   "items of 'in' must be constants (literals or constant expressions)");
      bad = 1;
    }
  }
  val out = VERR;
  if (bad) goto done;
  int want = x.t == MS__EXPR_CATEGORICAL ? MS__EXPR_STRING : x.t;
  if (x.t == MS__EXPR_DATETIME) want = -1; /* date items are converted below */
  for (int i = 0; i < n_items; i++) {
    int ti = items[i].t;
    int ok = ti == want || (x.t == MS__EXPR_DATETIME && (ti == MS__EXPR_DATE ||
                                                         ti == MS__EXPR_DATETIME)) ||
             (x.t == MS__EXPR_STRING && ti == MS__EXPR_CATEGORICAL);
    if (!ok) {
      ms__expr_err(&C->E, ast_start(n->args[1 + i]), "cannot compare %s and %s in 'in'",
                   tname(x.t), tname(ti));
      bad = 1;
    }
  }
  if (bad) goto done;
  if (x.t == MS__EXPR_CATEGORICAL) {
    uint8_t *tab = pool_calloc(C, x.n_cats, 1);
    if (!tab) goto done;
    for (int i = 0; i < n_items; i++) {
      int code = cat_code(C, &x, C->e->ins[items[i].reg].ks, ast_start(n->args[1 + i]));
      if (code < 0) bad = 1;
      else tab[code] = 1;
    }
    if (bad) goto done;
    if (n->negate)
      for (size_t k = 0; k < x.n_cats; k++) tab[k] = !tab[k];
    int r = new_ins(C, MS__OP_CODE_TABLE, MS__EXPR_BOOL, x.reg, -1, -1, n->offset);
    if (r < 0) goto done;
    C->e->ins[r].p1 = tab;
    C->e->ins[r].n1 = (int64_t)x.n_cats;
    if (is_const(C, x.reg)) fold(C, r);
    out = mk(r, MS__EXPR_BOOL);
    goto done;
  }
  int cls;
  size_t esz;
  switch (x.t) {
    case MS__EXPR_NUMBER:
    case MS__EXPR_DURATION: cls = MS__CL_F64; esz = sizeof(double); break;
    case MS__EXPR_DATE: cls = MS__CL_I32; esz = sizeof(int32_t); break;
    case MS__EXPR_DATETIME: cls = MS__CL_I64; esz = sizeof(int64_t); break;
    case MS__EXPR_BOOL: cls = MS__CL_U8; esz = 1; break;
    default: cls = MS__CL_STR; esz = sizeof(char *); break;
  }
  unsigned char *tab = pool_calloc(C, (size_t)n_items, esz);
  if (!tab) goto done;
  for (int i = 0; i < n_items; i++) {
    const ms__ins *K = &C->e->ins[items[i].reg];
    switch (cls) {
      case MS__CL_F64: ((double *)tab)[i] = K->kf; break;
      case MS__CL_I32: ((int32_t *)tab)[i] = (int32_t)K->ki; break;
      case MS__CL_I64:
        ((int64_t *)tab)[i] = items[i].t == MS__EXPR_DATE ? K->ki * 86400 : K->ki;
        break;
      case MS__CL_U8: tab[i] = (unsigned char)K->ki; break;
      default:
        if (items[i].t == MS__EXPR_CATEGORICAL)
          ((const char **)tab)[i] = items[i].cats[K->ki];
        else
          ((const char **)tab)[i] = K->ks;
        break;
    }
  }
  int r = new_ins(C, MS__OP_IN, MS__EXPR_BOOL, x.reg, -1, -1, n->offset);
  if (r < 0) goto done;
  C->e->ins[r].sub = (uint8_t)(cls | (n->negate ? 8 : 0));
  C->e->ins[r].p1 = tab;
  C->e->ins[r].n1 = n_items;
  if (is_const(C, x.reg)) fold(C, r);
  out = mk(r, MS__EXPR_BOOL);
done:
  free(items);
  return out;
}

/* ------------------------------------------------------------ functions */

static int arity(comp *C, const ms__ast *n, int lo, int hi) {
  int k = n->n_args;
  if (k >= lo && (hi < 0 || k <= hi)) return 1;
  if (lo == hi)
    ms__expr_err(&C->E, n->offset, "%s() takes %d argument%s", n->str, lo, lo == 1 ? "" : "s");
  else if (hi < 0)
    ms__expr_err(&C->E, n->offset, "%s() takes at least %d arguments", n->str, lo);
  else
    ms__expr_err(&C->E, n->offset, "%s() takes %d or %d arguments", n->str, lo, hi);
  return 0;
}

static int need(comp *C, const ms__ast *fn, int i, val v, int t1, int t2, const char *what) {
  if (v.t == T_ERR) return 0;
  if (v.t == t1 || (t2 >= 0 && v.t == t2)) return 1;
  ms__expr_err(&C->E, ast_start(fn->args[i]), "%s() needs %s, got %s", fn->str, what,
               tname(v.t));
  return 0;
}

/* Brings two values to one type for if()/coalesce()/min()/max(); reports
 * and returns 0 when impossible. */
static int unify(comp *C, val *a, val *b, const char *fn, int offset) {
  if (a->t == T_ERR || b->t == T_ERR) return 0;
  if (a->t == b->t) {
    if (a->t != MS__EXPR_CATEGORICAL || same_cats(a, b)) return 1;
    *a = cat_to_string(C, *a, offset);
    *b = cat_to_string(C, *b, offset);
    return a->t != T_ERR && b->t != T_ERR;
  }
  int sa = a->t == MS__EXPR_STRING || a->t == MS__EXPR_CATEGORICAL;
  int sb = b->t == MS__EXPR_STRING || b->t == MS__EXPR_CATEGORICAL;
  if (sa && sb) {
    *a = cat_to_string(C, *a, offset);
    *b = cat_to_string(C, *b, offset);
    return a->t != T_ERR && b->t != T_ERR;
  }
  int da = a->t == MS__EXPR_DATE || a->t == MS__EXPR_DATETIME;
  int db = b->t == MS__EXPR_DATE || b->t == MS__EXPR_DATETIME;
  if (da && db) {
    *a = to_datetime(C, *a, offset);
    *b = to_datetime(C, *b, offset);
    return a->t != T_ERR && b->t != T_ERR;
  }
  ms__expr_err(&C->E, offset, "%s() arguments have different types: %s and %s", fn, tname(a->t),
               tname(b->t));
  return 0;
}

static val keep_cats(val out, const val *from) {
  if (out.t == MS__EXPR_CATEGORICAL) {
    out.cats = from->cats;
    out.n_cats = from->n_cats;
    out.field = from->field;
  }
  return out;
}

static const char *const_string_arg(comp *C, const ms__ast *fn, int i, val v, const char *what) {
  if (v.t == T_ERR) return NULL;
  if (v.t != MS__EXPR_STRING || !is_const(C, v.reg) ||
      C->e->ins[v.reg].kstate != MS__ST_PRESENT) {
    ms__expr_err(&C->E, ast_start(fn->args[i]), "%s() argument %d must be a string constant (%s)",
                 fn->str, i + 1, what);
    return NULL;
  }
  return C->e->ins[v.reg].ks;
}

static val emit_lookup(comp *C, const ms__ast *n, val *args, int number) {
  const char *vname = const_string_arg(C, n, 0, args[0], "the vocabulary name");
  const char *kcol = const_string_arg(C, n, 1, args[1], "the key column");
  const char *vcol = const_string_arg(C, n, 3, args[3], "the value column");
  val key = args[2];
  int ok = vname && kcol && vcol && key.t != T_ERR;
  if (key.t != T_ERR && key.t != MS__EXPR_STRING && key.t != MS__EXPR_CATEGORICAL) {
    ms__expr_err(&C->E, ast_start(n->args[2]), "%s() needs a string or categorical key, got %s",
                 n->str, tname(key.t));
    ok = 0;
  }
  if (!ok) return VERR;
  if (!C->r || !C->r->vocab) {
    ms__expr_err(&C->E, n->offset, "%s() is not available here (no vocabularies)", n->str);
    return VERR;
  }
  int line, col;
  ms__expr_pos_of(C->E.o, ast_start(n->args[0]), &line, &col);
  ms__expr_pos pos = {C->E.o->file, line, col, C->E.o->where};
  ms__vocab *v = C->r->vocab(C->r->ctx, vname, C->E.d, &pos);
  if (!v) {
    C->E.n_errors++;
    return VERR;
  }
  ms__expr_pos_of(C->E.o, ast_start(n->args[1]), &line, &col);
  size_t kc = ms__vocab_col_require(v, kcol, C->E.d, C->E.o->file, line, col, C->E.o->where);
  ms__expr_pos_of(C->E.o, ast_start(n->args[3]), &line, &col);
  size_t vc = ms__vocab_col_require(v, vcol, C->E.d, C->E.o->file, line, col, C->E.o->where);
  if (kc == SIZE_MAX || vc == SIZE_MAX) {
    C->E.n_errors++;
    return VERR;
  }
  if (ms__vocab_index_build(v, kc, C->E.d) != MS_OK) {
    C->E.n_errors++;
    return VERR;
  }
  size_t nrows = ms__vocab_n_rows(v);
  double *nums = NULL;
  if (number) {
    nums = pool_calloc(C, nrows, sizeof *nums);
    if (!nums) return VERR;
    if (ms__vocab_col_numbers(v, vc, 1, nums, C->E.d) != MS_OK) {
      C->E.n_errors++;
      return VERR;
    }
  }
  int r;
  if (key.t == MS__EXPR_CATEGORICAL) {
    int32_t *rows = pool_calloc(C, key.n_cats, sizeof *rows);
    if (!rows) return VERR;
    for (size_t i = 0; i < key.n_cats; i++) {
      size_t row = ms__vocab_find(v, kc, key.cats[i]);
      rows[i] = row == SIZE_MAX ? -1 : (int32_t)row;
    }
    r = new_ins(C, number ? MS__OP_LOOKUP_NUM_CAT : MS__OP_LOOKUP_CAT,
                number ? MS__EXPR_NUMBER : MS__EXPR_STRING, key.reg, -1, -1, n->offset);
    if (r < 0) return VERR;
    C->e->ins[r].p1 = rows;
  } else {
    r = new_ins(C, number ? MS__OP_LOOKUP_NUM_STR : MS__OP_LOOKUP_STR,
                number ? MS__EXPR_NUMBER : MS__EXPR_STRING, key.reg, -1, -1, n->offset);
    if (r < 0) return VERR;
  }
  ms__ins *I = &C->e->ins[r];
  I->p2 = v;
  I->p3 = nums;
  I->n1 = (int64_t)vc;
  I->n2 = (int64_t)kc;
  if (is_const(C, key.reg)) fold(C, r);
  return mk(r, number ? MS__EXPR_NUMBER : MS__EXPR_STRING);
}

static val emit_call(comp *C, const ms__ast *n) {
  const char *f = n->str;
  if (!is_function(f)) {
    const char *best = NULL;
    int bd = 3;
    for (int i = 0; function_names[i]; i++) {
      int dist = ms__expr_edit_distance(f, function_names[i], 2);
      if (dist < bd) {
        bd = dist;
        best = function_names[i];
      }
    }
    if (best)
      ms__expr_err(&C->E, n->offset, "unknown function '%s' (did you mean '%s'?)", f, best);
    else
      ms__expr_err(&C->E, n->offset, "unknown function '%s'", f);
    for (int i = 0; i < n->n_args; i++) emit_ast(C, n->args[i]);
    return VERR;
  }
  /* Arguments first (all of them, so errors inside are reported too). */
  int k = n->n_args;
  val argv_small[8];
  val *args = k <= 8 ? argv_small : ms__calloc((size_t)k, sizeof *args);
  if (!args) {
    C->E.nomem = 1;
    return VERR;
  }
  for (int i = 0; i < k; i++) args[i] = emit_ast(C, n->args[i]);
  val out = VERR;
  int off = n->offset;
#define ARGS(lo, hi) \
  if (!arity(C, n, lo, hi)) goto done
  if (!strcmp(f, "if")) {
    ARGS(3, 3);
    int okc = need(C, n, 0, args[0], MS__EXPR_BOOL, -1, "a bool condition");
    val a = args[1], b = args[2];
    if (!unify(C, &a, &b, "if", off) || !okc) goto done;
    if (is_const(C, args[0].reg) && C->e->ins[args[0].reg].kstate == MS__ST_PRESENT) {
      out = keep_cats(C->e->ins[args[0].reg].ki ? a : b, &a);
      goto done;
    }
    out = keep_cats(mk(emit(C, MS__OP_IF, a.t, args[0].reg, a.reg, b.reg, off), a.t), &a);
  } else if (!strcmp(f, "coalesce")) {
    ARGS(2, -1);
    val acc = args[0];
    for (int i = 1; i < k; i++) {
      val b = args[i];
      if (!unify(C, &acc, &b, "coalesce", off)) goto done;
      acc = keep_cats(mk(emit(C, MS__OP_COALESCE, acc.t, acc.reg, b.reg, -1, off), acc.t), &acc);
    }
    out = acc;
  } else if (!strcmp(f, "is_missing")) {
    ARGS(1, 1);
    if (args[0].t == T_ERR) goto done;
    out = mk(emit(C, MS__OP_ISMISSING, MS__EXPR_BOOL, args[0].reg, -1, -1, off), MS__EXPR_BOOL);
  } else if (!strcmp(f, "min") || !strcmp(f, "max")) {
    ARGS(2, -1);
    int op = f[1] == 'i' ? MS__OP_MIN : MS__OP_MAX;
    val acc = args[0];
    for (int i = 0; i < k; i++)
      if (args[i].t != T_ERR && args[i].t != MS__EXPR_NUMBER && args[i].t != MS__EXPR_DURATION &&
          args[i].t != MS__EXPR_DATE && args[i].t != MS__EXPR_DATETIME) {
        ms__expr_err(&C->E, ast_start(n->args[i]),
                     "%s() needs numbers, durations, dates or datetimes, got %s", f,
                     tname(args[i].t));
        goto done;
      }
    for (int i = 1; i < k; i++) {
      val b = args[i];
      if (!unify(C, &acc, &b, f, off)) goto done;
      int cls = acc.t == MS__EXPR_DATE ? MS__CL_I32 : acc.t == MS__EXPR_DATETIME ? MS__CL_I64
                                                                                 : MS__CL_F64;
      int r = new_ins(C, op, acc.t, acc.reg, b.reg, -1, off);
      if (r < 0) goto done;
      C->e->ins[r].sub = (uint8_t)cls;
      if (is_const(C, acc.reg) && is_const(C, b.reg)) fold(C, r);
      acc = mk(r, acc.t);
    }
    out = acc;
  } else if (!strcmp(f, "clamp")) {
    ARGS(3, 3);
    int ok = 1;
    for (int i = 0; i < 3; i++)
      ok &= need(C, n, i, args[i], MS__EXPR_NUMBER, MS__EXPR_DURATION, "a number");
    if (!ok) goto done;
    val a = args[0], b = args[1], c = args[2];
    if (!unify(C, &a, &b, "clamp", off) || !unify(C, &a, &c, "clamp", off)) goto done;
    out = mk(emit(C, MS__OP_CLAMP, a.t, a.reg, b.reg, c.reg, off), a.t);
  } else if (!strcmp(f, "abs")) {
    ARGS(1, 1);
    if (!need(C, n, 0, args[0], MS__EXPR_NUMBER, MS__EXPR_DURATION, "a number")) goto done;
    out = mk(emit(C, MS__OP_ABS, args[0].t, args[0].reg, -1, -1, off), args[0].t);
  } else if (!strcmp(f, "log") || !strcmp(f, "log10") || !strcmp(f, "exp") ||
             !strcmp(f, "sqrt") || !strcmp(f, "floor") || !strcmp(f, "ceil")) {
    ARGS(1, 1);
    if (!need(C, n, 0, args[0], MS__EXPR_NUMBER, -1, "a number")) goto done;
    int op = !strcmp(f, "log")     ? MS__OP_LOG
             : !strcmp(f, "log10") ? MS__OP_LOG10
             : !strcmp(f, "exp")   ? MS__OP_EXP
             : !strcmp(f, "sqrt")  ? MS__OP_SQRT
             : !strcmp(f, "floor") ? MS__OP_FLOOR
                                   : MS__OP_CEIL;
    out = mk(emit(C, op, MS__EXPR_NUMBER, args[0].reg, -1, -1, off), MS__EXPR_NUMBER);
  } else if (!strcmp(f, "pow")) {
    ARGS(2, 2);
    int ok = need(C, n, 0, args[0], MS__EXPR_NUMBER, -1, "a number");
    ok &= need(C, n, 1, args[1], MS__EXPR_NUMBER, -1, "a number");
    if (!ok) goto done;
    out = arith(C, MS__TK_POW, args[0], args[1], off);
  } else if (!strcmp(f, "round")) {
    ARGS(1, 2);
    int ok = need(C, n, 0, args[0], MS__EXPR_NUMBER, -1, "a number");
    if (k == 2) ok &= need(C, n, 1, args[1], MS__EXPR_NUMBER, -1, "a number of digits");
    if (!ok) goto done;
    if (k == 1)
      out = mk(emit(C, MS__OP_ROUND, MS__EXPR_NUMBER, args[0].reg, -1, -1, off), MS__EXPR_NUMBER);
    else
      out = mk(emit(C, MS__OP_ROUND_D, MS__EXPR_NUMBER, args[0].reg, args[1].reg, -1, off),
               MS__EXPR_NUMBER);
  } else if (!strcmp(f, "date")) {
    ARGS(1, 1);
    val a = args[0];
    if (a.t == T_ERR) goto done;
    if (a.t == MS__EXPR_DATE) out = a;
    else if (a.t == MS__EXPR_DATETIME)
      out = mk(emit(C, MS__OP_DT_TO_DATE, MS__EXPR_DATE, a.reg, -1, -1, off), MS__EXPR_DATE);
    else if (a.t == MS__EXPR_STRING || a.t == MS__EXPR_CATEGORICAL) {
      a = cat_to_string(C, a, off);
      if (a.t == T_ERR) goto done;
      int r = emit(C, MS__OP_DATE_PARSE, MS__EXPR_DATE, a.reg, -1, -1, off);
      if (r >= 0 && is_const(C, r) && C->e->ins[r].kstate == MS__ST_ERROR) {
        ms__expr_err(&C->E, ast_start(n->args[0]), "%s", C->e->ins[r].kmsg);
        goto done;
      }
      out = mk(r, MS__EXPR_DATE);
    } else {
      need(C, n, 0, a, MS__EXPR_STRING, -1, "a 'YYYY-MM-DD' string or a datetime");
    }
  } else if (!strcmp(f, "datetime")) {
    ARGS(1, 1);
    val a = args[0];
    if (a.t == T_ERR) goto done;
    if (a.t == MS__EXPR_DATETIME) out = a;
    else if (a.t == MS__EXPR_DATE) out = to_datetime(C, a, off);
    else if (a.t == MS__EXPR_STRING || a.t == MS__EXPR_CATEGORICAL) {
      a = cat_to_string(C, a, off);
      if (a.t == T_ERR) goto done;
      int r = emit(C, MS__OP_DT_PARSE, MS__EXPR_DATETIME, a.reg, -1, -1, off);
      if (r >= 0 && is_const(C, r) && C->e->ins[r].kstate == MS__ST_ERROR) {
        ms__expr_err(&C->E, ast_start(n->args[0]), "%s", C->e->ins[r].kmsg);
        goto done;
      }
      out = mk(r, MS__EXPR_DATETIME);
    } else {
      need(C, n, 0, a, MS__EXPR_STRING, -1, "a 'YYYY-MM-DDTHH:MM:SS' string or a date");
    }
  } else if (!strcmp(f, "days") || !strcmp(f, "years") || !strcmp(f, "hours") ||
             !strcmp(f, "minutes")) {
    ARGS(1, 1);
    if (!need(C, n, 0, args[0], MS__EXPR_NUMBER, -1, "a number")) goto done;
    if (f[0] == 'd') {
      out = mk(args[0].reg, MS__EXPR_DURATION);
    } else {
      /* years: n * 365.2425; hours and minutes divide (24 and 1440 are
       * exact, their reciprocals are not) */
      int years = f[0] == 'y';
      int kr = const_num(C, years ? 365.2425 : f[0] == 'h' ? 24.0 : 1440.0, off);
      out = mk(emit(C, years ? MS__OP_MUL : MS__OP_DIV, MS__EXPR_DURATION, args[0].reg, kr, -1,
                    off),
               MS__EXPR_DURATION);
    }
  } else if (!strcmp(f, "year") || !strcmp(f, "month") || !strcmp(f, "day")) {
    ARGS(1, 1);
    val a = args[0];
    if (!need(C, n, 0, a, MS__EXPR_DATE, MS__EXPR_DATETIME, "a date")) goto done;
    if (a.t == MS__EXPR_DATETIME)
      a = mk(emit(C, MS__OP_DT_TO_DATE, MS__EXPR_DATE, a.reg, -1, -1, off), MS__EXPR_DATE);
    int op = f[0] == 'y' ? MS__OP_YEAR : f[0] == 'm' ? MS__OP_MONTH : MS__OP_DAY;
    out = mk(emit(C, op, MS__EXPR_NUMBER, a.reg, -1, -1, off), MS__EXPR_NUMBER);
  } else if (!strcmp(f, "years_between")) {
    ARGS(2, 2);
    val a = args[0], b = args[1];
    int ok = need(C, n, 0, a, MS__EXPR_DATE, MS__EXPR_DATETIME, "a date");
    ok &= need(C, n, 1, b, MS__EXPR_DATE, MS__EXPR_DATETIME, "a date");
    if (!ok) goto done;
    if (a.t == MS__EXPR_DATETIME)
      a = mk(emit(C, MS__OP_DT_TO_DATE, MS__EXPR_DATE, a.reg, -1, -1, off), MS__EXPR_DATE);
    if (b.t == MS__EXPR_DATETIME)
      b = mk(emit(C, MS__OP_DT_TO_DATE, MS__EXPR_DATE, b.reg, -1, -1, off), MS__EXPR_DATE);
    out = mk(emit(C, MS__OP_YEARS_BETWEEN, MS__EXPR_NUMBER, a.reg, b.reg, -1, off),
             MS__EXPR_NUMBER);
  } else if (!strcmp(f, "startswith")) {
    ARGS(2, 2);
    val s = args[0], p = args[1];
    int ok = need(C, n, 0, s, MS__EXPR_STRING, MS__EXPR_CATEGORICAL, "a string");
    ok &= need(C, n, 1, p, MS__EXPR_STRING, MS__EXPR_CATEGORICAL, "a string prefix");
    if (!ok) goto done;
    if (s.t == MS__EXPR_CATEGORICAL && is_const(C, p.reg) && p.t == MS__EXPR_STRING &&
        C->e->ins[p.reg].kstate == MS__ST_PRESENT) {
      const char *pre = C->e->ins[p.reg].ks;
      size_t pl = strlen(pre);
      uint8_t *tab = pool_calloc(C, s.n_cats, 1);
      if (!tab) goto done;
      for (size_t i = 0; i < s.n_cats; i++) tab[i] = !strncmp(s.cats[i], pre, pl);
      int r = new_ins(C, MS__OP_CODE_TABLE, MS__EXPR_BOOL, s.reg, -1, -1, off);
      if (r < 0) goto done;
      C->e->ins[r].p1 = tab;
      C->e->ins[r].n1 = (int64_t)s.n_cats;
      if (is_const(C, s.reg)) fold(C, r);
      out = mk(r, MS__EXPR_BOOL);
      goto done;
    }
    s = cat_to_string(C, s, off);
    p = cat_to_string(C, p, off);
    if (s.t == T_ERR || p.t == T_ERR) goto done;
    out = mk(emit(C, MS__OP_STARTSWITH, MS__EXPR_BOOL, s.reg, p.reg, -1, off), MS__EXPR_BOOL);
  } else if (!strcmp(f, "lookup") || !strcmp(f, "lookup_number")) {
    ARGS(4, 4);
    out = emit_lookup(C, n, args, f[6] == '_');
  }
#undef ARGS
done:
  if (args != argv_small) free(args);
  return out;
}

/* ------------------------------------------------------------------ AST */

static val emit_ast(comp *C, const ms__ast *n) {
  if (C->E.nomem) return VERR;
  switch (n->kind) {
    case MS__AST_NUM: return mk(const_num(C, n->num, n->offset), MS__EXPR_NUMBER);
    case MS__AST_STR: {
      int r = new_ins(C, MS__OP_CONST, MS__EXPR_STRING, -1, -1, -1, n->offset);
      if (r < 0) return VERR;
      const char *s = pool_strdup(C, n->str);
      if (!s) return VERR;
      C->e->ins[r].ks = s;
      C->e->ins[r].kstate = MS__ST_PRESENT;
      return mk(r, MS__EXPR_STRING);
    }
    case MS__AST_BOOL: {
      int r = new_ins(C, MS__OP_CONST, MS__EXPR_BOOL, -1, -1, -1, n->offset);
      if (r < 0) return VERR;
      C->e->ins[r].ki = n->num != 0;
      C->e->ins[r].kstate = MS__ST_PRESENT;
      return mk(r, MS__EXPR_BOOL);
    }
    case MS__AST_NAME: return emit_name(C, n);
    case MS__AST_UNARY: {
      val x = emit_ast(C, n->args[0]);
      if (x.t == T_ERR) return VERR;
      if (n->op == 'n') {
        if (x.t != MS__EXPR_BOOL) {
          ms__expr_err(&C->E, n->offset, "'not' needs a bool operand, got %s", tname(x.t));
          return VERR;
        }
        return mk(emit(C, MS__OP_NOT, MS__EXPR_BOOL, x.reg, -1, -1, n->offset), MS__EXPR_BOOL);
      }
      if (x.t != MS__EXPR_NUMBER && x.t != MS__EXPR_DURATION) {
        ms__expr_err(&C->E, n->offset, "cannot %s %s", n->op == '-' ? "negate" : "apply unary '+' to",
                     tname(x.t));
        return VERR;
      }
      if (n->op == '+') return x;
      return mk(emit(C, MS__OP_NEG, x.t, x.reg, -1, -1, n->offset), x.t);
    }
    case MS__AST_BINARY: {
      val a = emit_ast(C, n->args[0]);
      val b = emit_ast(C, n->args[1]);
      int op = n->op;
      if (op == MS__TK_AND || op == MS__TK_OR) {
        if (a.t == T_ERR || b.t == T_ERR) return VERR;
        int bad = 0;
        if (a.t != MS__EXPR_BOOL) {
          ms__expr_err(&C->E, ast_start(n->args[0]), "'%s' needs bool operands, got %s",
                       op == MS__TK_AND ? "and" : "or", tname(a.t));
          bad = 1;
        }
        if (b.t != MS__EXPR_BOOL) {
          ms__expr_err(&C->E, ast_start(n->args[1]), "'%s' needs bool operands, got %s",
                       op == MS__TK_AND ? "and" : "or", tname(b.t));
          bad = 1;
        }
        if (bad) return VERR;
        return mk(emit(C, op == MS__TK_AND ? MS__OP_AND : MS__OP_OR, MS__EXPR_BOOL, a.reg, b.reg,
                       -1, n->offset),
                  MS__EXPR_BOOL);
      }
      if (is_cmp(op)) return compare(C, op, a, b, n->args[0], n->args[1], n->offset);
      return arith(C, op, a, b, n->offset);
    }
    case MS__AST_CALL: return emit_call(C, n);
    case MS__AST_IN: return emit_in(C, n);
    default: return VERR;
  }
}

/* Keeps only instructions the result depends on; renumbers operands. */
static int compact(comp *C, int root) {
  ms__expr *e = C->e;
  int *map = ms__malloc(e->n_ins * sizeof *map);
  uint8_t *live = ms__calloc(e->n_ins, 1);
  if (!map || !live) {
    free(map);
    free(live);
    C->E.nomem = 1;
    return -1;
  }
  live[root] = 1;
  for (int i = root; i >= 0; i--) {
    if (!live[i]) continue;
    const ms__ins *I = &e->ins[i];
    if (I->a >= 0) live[I->a] = 1;
    if (I->b >= 0) live[I->b] = 1;
    if (I->c >= 0) live[I->c] = 1;
  }
  size_t k = 0;
  for (int i = 0; i <= root; i++) {
    if (!live[i]) continue;
    ms__ins I = e->ins[i];
    if (I.a >= 0) I.a = map[I.a];
    if (I.b >= 0) I.b = map[I.b];
    if (I.c >= 0) I.c = map[I.c];
    map[i] = (int)k;
    e->ins[k++] = I;
  }
  e->n_ins = k;
  /* slots actually read */
  e->n_slots = 0;
  for (size_t i = 0; i < k; i++)
    if (e->ins[i].op == MS__OP_LOAD && (size_t)e->ins[i].slot + 1 > e->n_slots)
      e->n_slots = (size_t)e->ins[i].slot + 1;
  free(map);
  free(live);
  return 0;
}

/* A folded error that every row would hit (not under an if() branch or an
 * and/or operand, which may discard it) is a compile error. */
static void report_certain_errors(comp *C) {
  ms__expr *e = C->e;
  if (!e->n_ins) return;
  uint8_t *sure = ms__calloc(e->n_ins, 1);
  if (!sure) {
    C->E.nomem = 1;
    return;
  }
  sure[e->n_ins - 1] = 1;
  for (size_t k = e->n_ins; k-- > 0;) {
    const ms__ins *I = &e->ins[k];
    if (!sure[k]) continue;
    if (I->op == MS__OP_CONST) {
      if (I->kstate == MS__ST_ERROR)
        ms__expr_err(&C->E, I->offset, "%s", I->kmsg ? I->kmsg : "cannot be evaluated");
      continue;
    }
    if (I->op == MS__OP_AND || I->op == MS__OP_OR) continue;
    if (I->a >= 0) sure[I->a] = 1;
    if (I->op == MS__OP_IF) continue;
    if (I->b >= 0) sure[I->b] = 1;
    if (I->c >= 0) sure[I->c] = 1;
  }
  free(sure);
}

void ms__expr_free(ms__expr *e) {
  if (!e) return;
  for (size_t i = 0; i < e->n_pool; i++) free(e->pool[i]);
  free(e->pool);
  for (size_t i = 0; i < e->n_names; i++) free(e->names[i]);
  free(e->names);
  free(e->ins);
  free(e->src);
  free(e->file);
  free(e->where);
  free(e);
}

ms_status ms__expr_compile(ms__expr **out, const char *src, const ms__expr_resolver *r,
                           const ms__expr_compile_params *o, ms_diag *d) {
  *out = NULL;
  ms__expr_compile_params def;
  if (!o) {
    ms__expr_compile_params_init(&def);
    o = &def;
  }
  if (!src)
    return ms_diag_add(d, MS_ERR_INVALID, o->file, o->line, o->column, o->where,
                       "expression is missing");
  comp C;
  memset(&C, 0, sizeof C);
  C.r = r;
  C.E.o = o;
  C.E.d = d;
  C.e = ms__calloc(1, sizeof *C.e);
  if (!C.e)
    return ms_diag_add(d, MS_ERR_NOMEM, o->file, o->line, o->column, o->where,
                       "out of memory compiling expression");
  size_t first = d ? d->count : 0;
  ms__expr *e = C.e;
  e->src = ms__strdup(src);
  e->file = o->file ? ms__strdup(o->file) : NULL;
  e->where = o->where ? ms__strdup(o->where) : NULL;
  e->line = o->line;
  e->column = o->column;
  e->escaped = o->escaped;
  if (!e->src || (o->file && !e->file) || (o->where && !e->where)) C.E.nomem = 1;
  ms__arena a = {0};
  ms__ast *root = C.E.nomem ? NULL : ms__expr_parse(src, &a, &C.E);
  val res = VERR;
  if (root) res = emit_ast(&C, root);
  if (a.failed) C.E.nomem = 1;
  if (res.t != T_ERR && !C.E.nomem && C.E.n_errors == 0) {
    if (o->want != MS__EXPR_ANY && (int)o->want != res.t) {
      if (o->want == MS__EXPR_STRING && res.t == MS__EXPR_CATEGORICAL)
        res = cat_to_string(&C, res, 0);
      else if (o->want == MS__EXPR_DATETIME && res.t == MS__EXPR_DATE)
        res = to_datetime(&C, res, 0);
      else
        ms__expr_err(&C.E, 0, "expression has type %s, expected %s", tname(res.t),
                     ms__expr_type_name(o->want));
    }
  }
  if (res.t != T_ERR && !C.E.nomem && C.E.n_errors == 0) {
    e->type = (ms__expr_type)res.t;
    if (res.t == MS__EXPR_CATEGORICAL) {
      e->cats = (char **)res.cats;
      e->n_cats = res.n_cats;
    }
    if (compact(&C, res.reg) == 0) report_certain_errors(&C);
  }
  ms__arena_free(&a);
  for (size_t i = 0; i < C.n_syms; i++) free(C.syms[i].name);
  free(C.syms);
  if (C.E.nomem) {
    /* What this compile reported may be a consequence of the failed
     * allocation (a token that could not be stored reads as the end of the
     * expression): only the allocation failure is reported. */
    ms__diag_truncate(d, first);
    ms__expr_free(e);
    return ms_diag_add(d, MS_ERR_NOMEM, o->file, o->line, o->column, o->where,
                       "out of memory compiling expression");
  }
  if (C.E.n_errors || res.t == T_ERR) {
    ms__expr_free(e);
    return MS_ERR_SPEC;
  }
  *out = e;
  return MS_OK;
}

/* ------------------------------------------------------------ accessors */

const char *ms__expr_source(const ms__expr *e) { return e->src; }
ms__expr_type ms__expr_result_type(const ms__expr *e) { return e->type; }
size_t ms__expr_result_n_categories(const ms__expr *e) { return e->n_cats; }
const char *const *ms__expr_result_categories(const ms__expr *e) {
  return (const char *const *)e->cats;
}
size_t ms__expr_n_names(const ms__expr *e) { return e->n_names; }
const char *ms__expr_name(const ms__expr *e, size_t i) {
  return i < e->n_names ? e->names[i] : NULL;
}
size_t ms__expr_n_slots(const ms__expr *e) { return e->n_slots; }

/* 1 when instruction i is "categorical slot == label" (either operand
 * order): its slot and the label's code. */
static int code_eq_at(const ms__expr *e, int32_t i, int32_t *slot, int64_t *code) {
  if (i < 0 || (size_t)i >= e->n_ins) return 0;
  const ms__ins *c = &e->ins[i];
  if (c->op != MS__OP_CMP || (c->sub & 7) != MS__TK_EQ - MS__TK_EQ || (c->sub >> 3) != MS__CL_I32) return 0;
  const ms__ins *a = &e->ins[c->a], *b = &e->ins[c->b];
  if (a->op == MS__OP_CONST) {
    const ms__ins *t = a;
    a = b;
    b = t;
  }
  if (a->op != MS__OP_LOAD || a->type != MS__EXPR_CATEGORICAL || b->op != MS__OP_CONST ||
      b->type != MS__EXPR_CATEGORICAL || b->kstate != MS__ST_PRESENT)
    return 0;
  *slot = a->slot;
  *code = b->ki;
  return 1;
}

int ms__expr_code_eq(const ms__expr *e, int32_t *slot, int64_t *code) {
  return e && e->n_ins == 3 && code_eq_at(e, 2, slot, code);
}

/* The result is the last instruction and compact() kept only what it
 * depends on: "x == 'l1' and y == 'l2'" is an AND over two such
 * comparisons (LOAD, CONST, CMP for each side, in source order). */
int ms__expr_code_eq2(const ms__expr *e, int32_t slot[2], int64_t code[2]) {
  if (!e || e->n_ins != 7) return 0;
  const ms__ins *r = &e->ins[6];
  if (r->op != MS__OP_AND || !code_eq_at(e, r->a, &slot[0], &code[0]) ||
      !code_eq_at(e, r->b, &slot[1], &code[1]))
    return 0;
  return slot[0] != slot[1];
}
int ms__expr_is_const(const ms__expr *e) {
  for (size_t i = 0; i < e->n_ins; i++)
    if (e->ins[i].op == MS__OP_LOAD) return 0;
  return 1;
}

ms_status ms__expr_error_report(const ms__expr *e, const ms__expr_error *err, ms_diag *d,
                                const char *where) {
  ms_diag_add(d, err->status, e->file, err->line, err->column, where, "%s", err->message);
  return err->status;
}

ms_status ms__expr_const_value(const char *src, const ms__expr_resolver *r,
                               const ms__expr_compile_params *o, ms__expr_value *out,
                               char **str_out, ms_diag *d) {
  memset(out, 0, sizeof *out);
  if (str_out) *str_out = NULL;
  ms__expr *e = NULL;
  ms_status st = ms__expr_compile(&e, src, r, o, d);
  if (st != MS_OK) return st;
  ms__expr_compile_params def;
  if (!o) {
    ms__expr_compile_params_init(&def);
    o = &def;
  }
  if (!ms__expr_is_const(e)) {
    const char *field = NULL;
    for (size_t i = 0; i < e->n_ins && !field; i++)
      if (e->ins[i].op == MS__OP_LOAD) field = e->src + e->ins[i].offset;
    int line, col;
    int off = 0;
    for (size_t i = 0; i < e->n_ins; i++)
      if (e->ins[i].op == MS__OP_LOAD) {
        off = e->ins[i].offset;
        break;
      }
    ms__expr_pos_of(o, off, &line, &col);
    size_t len = 0;
    while (field && (field[len] == '_' || field[len] == '.' ||
                     (field[len] >= '0' && field[len] <= '9') ||
                     ((field[len] | 32) >= 'a' && (field[len] | 32) <= 'z')))
      len++;
    ms_diag_add(d, MS_ERR_SPEC, o->file, line, col, o->where,
                "a constant is required here, but the expression reads field '%.*s'", (int)len,
                field ? field : "");
    ms__expr_free(e);
    return MS_ERR_SPEC;
  }
  ms__expr_error err;
  st = ms__expr_eval_const(e, out, &err);
  if (st != MS_OK) {
    ms_diag_add(d, st, o->file, err.line, err.column, o->where, "%s", err.message);
  } else if (out->type == MS__EXPR_STRING && !out->missing) {
    if (str_out) {
      *str_out = ms__strdup(out->str ? out->str : "");
      if (!*str_out)
        st = ms_diag_add(d, MS_ERR_NOMEM, o->file, o->line, o->column, o->where,
                         "out of memory for a constant string");
    }
    out->str = NULL;
  }
  ms__expr_free(e);
  return st;
}
