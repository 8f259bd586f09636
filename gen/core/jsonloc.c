/* JSON source locator (see jsonloc.h).
 *
 * A minimal recursive scanner over RFC 8259 JSON: it skips values without
 * building anything, and walks object members / array elements along a JSON
 * Pointer. Member names are compared after decoding the JSON string escapes
 * (\" \\ \/ \b \f \n \r \t \uXXXX incl. surrogate pairs) against the pointer
 * token after RFC 6901 unescaping (~1 -> '/', ~0 -> '~').
 *
 * Invariant: never reads outside [text, text+len); nesting is bounded (512)
 * so hostile input cannot exhaust the stack. */
#include "core/jsonloc.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 512

typedef struct {
  const char *t;
  size_t n;
} scan;

static size_t skip_ws(const scan *s, size_t p) {
  while (p < s->n && (s->t[p] == ' ' || s->t[p] == '\t' || s->t[p] == '\n' || s->t[p] == '\r'))
    p++;
  return p;
}

/* p at '"'; returns offset just past the closing quote, or SIZE_MAX. */
static size_t skip_string(const scan *s, size_t p) {
  if (p >= s->n || s->t[p] != '"') return SIZE_MAX;
  p++;
  while (p < s->n) {
    char c = s->t[p];
    if (c == '"') return p + 1;
    if (c == '\\') p++;
    p++;
  }
  return SIZE_MAX;
}

static size_t skip_value(const scan *s, size_t p, int depth);

static size_t skip_container(const scan *s, size_t p, int depth) {
  char open = s->t[p], close = open == '{' ? '}' : ']';
  if (depth > MAX_DEPTH) return SIZE_MAX;
  p = skip_ws(s, p + 1);
  if (p < s->n && s->t[p] == close) return p + 1;
  for (;;) {
    if (open == '{') {
      p = skip_string(s, skip_ws(s, p));
      if (p == SIZE_MAX) return SIZE_MAX;
      p = skip_ws(s, p);
      if (p >= s->n || s->t[p] != ':') return SIZE_MAX;
      p++;
    }
    p = skip_value(s, p, depth + 1);
    if (p == SIZE_MAX) return SIZE_MAX;
    p = skip_ws(s, p);
    if (p >= s->n) return SIZE_MAX;
    if (s->t[p] == ',') {
      p++;
      continue;
    }
    if (s->t[p] == close) return p + 1;
    return SIZE_MAX;
  }
}

static size_t skip_value(const scan *s, size_t p, int depth) {
  p = skip_ws(s, p);
  if (p >= s->n) return SIZE_MAX;
  char c = s->t[p];
  if (c == '"') return skip_string(s, p);
  if (c == '{' || c == '[') return skip_container(s, p, depth);
  /* number, true, false, null: run of literal characters */
  size_t q = p;
  while (q < s->n) {
    char d = s->t[q];
    if ((d >= '0' && d <= '9') || (d >= 'a' && d <= 'z') || d == '-' || d == '+' || d == '.' ||
        d == 'E')
      q++;
    else
      break;
  }
  return q > p ? q : SIZE_MAX;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int read_hex4(const scan *s, size_t p, unsigned *out) {
  if (p + 4 > s->n) return -1;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(s->t[p + (size_t)i]);
    if (h < 0) return -1;
    v = v * 16 + (unsigned)h;
  }
  *out = v;
  return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Decodes the escape at *pp (at a backslash with a character after it)
 * into buf (up to 4 bytes) and moves *pp past it; returns the bytes, or -1
 * for a \u without four hex digits (*pp then just past the "\u"). A high
 * surrogate followed by an escaped low one is one code point. */
static int decode_escape(const scan *s, size_t *pp, char *buf) {
  size_t p = *pp;
  char e = s->t[p + 1];
  int nb = 1;
  p += 2;
  switch (e) {
    case 'b': buf[0] = '\b'; break;
    case 'f': buf[0] = '\f'; break;
    case 'n': buf[0] = '\n'; break;
    case 'r': buf[0] = '\r'; break;
    case 't': buf[0] = '\t'; break;
    case 'u': {
      unsigned cp;
      if (read_hex4(s, p, &cp)) {
        *pp = p;
        return -1;
      }
      p += 4;
      if (cp >= 0xD800 && cp < 0xDC00 && p + 6 <= s->n && s->t[p] == '\\' && s->t[p + 1] == 'u') {
        unsigned lo;
        if (!read_hex4(s, p + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          p += 6;
        }
      }
      nb = (int)put_utf8(buf, cp);
      break;
    }
    default: buf[0] = e; break;
  }
  *pp = p;
  return nb;
}

/* Compares the JSON string at p (at '"') with token[0..tlen) after decoding
 * escapes. Returns 1 on equality, 0 otherwise. */
static int string_equals(const scan *s, size_t p, const char *token, size_t tlen) {
  size_t k = 0;
  p++;
  while (p < s->n) {
    char c = s->t[p];
    char buf[8];
    size_t nb;
    if (c == '"') return k == tlen;
    if (c == '\\') {
      if (p + 1 >= s->n) return 0;
      int r = decode_escape(s, &p, buf);
      if (r < 0) return 0;
      nb = (size_t)r;
    } else {
      buf[0] = c;
      nb = 1;
      p++;
    }
    if (k + nb > tlen || memcmp(token + k, buf, nb) != 0) return 0;
    k += nb;
  }
  return 0;
}

/* Decodes the JSON string at p (at '"') into out (cap bytes, NUL-terminated,
 * truncated; escapes decoded as by string_equals). */
static void decode_string(const scan *s, size_t p, char *out, size_t cap) {
  size_t k = 0;
  p++;
  while (p < s->n && s->t[p] != '"' && k + 5 < cap) {
    char c = s->t[p];
    if (c != '\\') {
      out[k++] = c;
      p++;
      continue;
    }
    if (p + 1 >= s->n) break;
    int nb = decode_escape(s, &p, out + k);
    if (nb > 0) k += (size_t)nb;
  }
  out[k] = '\0';
}

#define DEPTH_LIMIT 256

int ms__jsonloc_too_deep(const char *text, size_t len, int max_depth, size_t *off, char *pointer,
                         size_t cap) {
  /* Per open container: object or array, the element index, and for an
   * object the offset of the current member's key (SIZE_MAX before one). */
  unsigned char is_obj[DEPTH_LIMIT];
  size_t index[DEPTH_LIMIT], key[DEPTH_LIMIT];
  scan s = {text, len};
  int depth = 0;
  if (max_depth > DEPTH_LIMIT) max_depth = DEPTH_LIMIT;
  for (size_t p = 0; p < len; p++) {
    char c = text[p];
    if (c == '"') {
      size_t e = skip_string(&s, p);
      if (e == SIZE_MAX) return 0;
      /* An object's key: the first string after '{' or ','. */
      if (depth > 0 && is_obj[depth - 1] && key[depth - 1] == SIZE_MAX) key[depth - 1] = p;
      p = e - 1;
    } else if (c == '{' || c == '[') {
      if (depth == max_depth) {
        *off = p;
        if (cap) pointer[0] = '\0';
        for (int l = 0; l < depth; l++) {
          char tok[256];
          if (is_obj[l] && key[l] != SIZE_MAX)
            decode_string(&s, key[l], tok, sizeof tok);
          else
            snprintf(tok, sizeof tok, "%zu", index[l]);
          size_t n = strnlen(pointer, cap);
          if (n + 1 < cap) {
            pointer[n] = '/';
            pointer[n + 1] = '\0';
            ms__jsonptr_append(pointer, cap, tok);
          }
        }
        return 1;
      }
      is_obj[depth] = c == '{';
      index[depth] = 0;
      key[depth] = SIZE_MAX;
      depth++;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return 0;
      depth--;
    } else if (c == ',' && depth > 0) {
      index[depth - 1]++;
      key[depth - 1] = SIZE_MAX;
    }
  }
  return 0;
}

/* Decodes pointer token [a, b) per RFC 6901 into out (cap bytes). */
static size_t decode_token(const char *a, const char *b, char *out, size_t cap) {
  size_t k = 0;
  for (const char *q = a; q < b && k + 1 < cap; q++) {
    if (*q == '~' && q + 1 < b && (q[1] == '0' || q[1] == '1')) {
      out[k++] = q[1] == '0' ? '~' : '/';
      q++;
    } else {
      out[k++] = *q;
    }
  }
  out[k] = '\0';
  return k;
}

int ms__jsonloc_find(const char *text, size_t len, const char *pointer, int want_key,
                     size_t *off) {
  scan s = {text, len};
  size_t p = skip_ws(&s, 0);
  if (p >= len) return -1;
  const char *q = pointer;
  if (*q && *q != '/') return -1;
  char tok[1024];
  while (*q == '/') {
    const char *a = q + 1, *b = a;
    while (*b && *b != '/') b++;
    size_t tlen = decode_token(a, b, tok, sizeof tok);
    int last = *b == '\0';
    p = skip_ws(&s, p);
    if (p >= len) return -1;
    if (text[p] == '{') {
      p = skip_ws(&s, p + 1);
      int found = 0;
      while (p < len && text[p] == '"') {
        size_t key = p;
        size_t e = skip_string(&s, p);
        if (e == SIZE_MAX) return -1;
        p = skip_ws(&s, e);
        if (p >= len || text[p] != ':') return -1;
        p = skip_ws(&s, p + 1);
        if (string_equals(&s, key, tok, tlen)) {
          if (last && want_key) {
            *off = key;
            return 0;
          }
          found = 1;
          break;
        }
        p = skip_value(&s, p, 0);
        if (p == SIZE_MAX) return -1;
        p = skip_ws(&s, p);
        if (p < len && text[p] == ',') p = skip_ws(&s, p + 1);
      }
      if (!found) return -1;
    } else if (text[p] == '[') {
      if (tlen == 0) return -1;
      size_t idx = 0;
      for (size_t i = 0; i < tlen; i++) {
        if (tok[i] < '0' || tok[i] > '9' || idx > SIZE_MAX / 16) return -1;
        idx = idx * 10 + (size_t)(tok[i] - '0');
      }
      p = skip_ws(&s, p + 1);
      for (size_t i = 0; i < idx; i++) {
        if (p >= len || text[p] == ']') return -1;
        p = skip_value(&s, p, 0);
        if (p == SIZE_MAX) return -1;
        p = skip_ws(&s, p);
        if (p >= len || text[p] != ',') return -1;
        p = skip_ws(&s, p + 1);
      }
      if (p >= len || text[p] == ']') return -1;
    } else {
      return -1;
    }
    q = b;
  }
  *off = skip_ws(&s, p);
  return *off < len ? 0 : -1;
}

void ms__jsonloc_linecol(const char *text, size_t len, size_t off, int *line, int *column) {
  if (off > len) off = len;
  int l = 1, c = 1;
  for (size_t i = 0; i < off; i++) {
    if (text[i] == '\n') {
      l++;
      c = 1;
    } else {
      c++;
    }
  }
  *line = l;
  *column = c;
}

void ms__jsonloc_pointer_linecol(const char *text, size_t len, const char *pointer,
                                 int want_key, int *line, int *column) {
  size_t off;
  char buf[1024];
  size_t n = strlen(pointer);
  if (n >= sizeof buf) n = sizeof buf - 1;
  memcpy(buf, pointer, n);
  buf[n] = '\0';
  int key = want_key;
  for (;;) {
    if (ms__jsonloc_find(text, len, buf, key, &off) == 0) {
      ms__jsonloc_linecol(text, len, off, line, column);
      return;
    }
    char *slash = strrchr(buf, '/');
    if (!slash) break;
    *slash = '\0';
    key = 0;
  }
  *line = 0;
  *column = 0;
}

size_t ms__jsonptr_append(char *buf, size_t cap, const char *token) {
  size_t k = strnlen(buf, cap);
  for (const char *q = token; *q && k + 2 < cap; q++) {
    if (*q == '~' || *q == '/') {
      buf[k++] = '~';
      buf[k++] = *q == '~' ? '0' : '1';
    } else {
      buf[k++] = *q;
    }
  }
  if (k < cap) buf[k] = '\0';
  return k;
}

void ms__jsonptr_key(char *out, size_t cap, const char *base, const char *key) {
  snprintf(out, cap, "%s/", base);
  ms__jsonptr_append(out, cap, key);
}
