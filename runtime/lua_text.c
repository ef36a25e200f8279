/* smg.core text: the byte loops of smg.text that Lua patterns do slowly. A Lua character
 * class costs about 10 ns a byte; guardrails scan every byte of every payload, so the
 * folding a scan starts with is done here, in one pass. Everything else (which rules run,
 * what a match means) stays in Lua (lua/smg/text.lua). */
#include <stdint.h>
#include <string.h>

#include "lua_vm.h"

/* is_ascii(s) -> whether s has no byte >= 0x80 (eight bytes at a time). */
static int l_is_ascii(lua_State *L) {
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    if (w & 0x8080808080808080ULL) {
      lua_pushboolean(L, 0);
      return 1;
    }
  }
  for (; i < n; i++) {
    if (s[i] & 0x80) {
      lua_pushboolean(L, 0);
      return 1;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int is_blank(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* fold(s) -> s with ASCII letters lower-cased, every run of blanks (space, tab, CR, FF,
 * VT) one space, and a line break with the blanks and line breaks around it one "\n":
 * exactly s:lower():gsub("[ \t\r\f\v]+", " "):gsub(" ?\n[\n ]*", "\n"), in one pass.
 * Other bytes are copied as they are. */
static int l_fold(lua_State *L) {
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  /* The result is never longer than s. A userdata as scratch: the collector frees it even
   * when pushing the result raises. */
  char small[1024];
  char *out = n <= sizeof(small) ? small : lua_newuserdata(L, n);
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    /* Copy a run of ordinary bytes in one go. */
    size_t j = i;
    while (j < n && !is_blank(s[j]) && s[j] != '\n' && !(s[j] >= 'A' && s[j] <= 'Z')) j++;
    if (j > i) {
      memcpy(out + o, s + i, j - i);
      o += j - i;
      i = j;
      continue;
    }
    unsigned char c = s[i++];
    int last = o ? (unsigned char)out[o - 1] : -1;
    if (c >= 'A' && c <= 'Z') {
      out[o++] = (char)(c + 32);
    } else if (is_blank(c)) {
      if (last != ' ' && last != '\n') out[o++] = ' ';
    } else {                                                        /* '\n' */
      if (last == ' ') last = --o ? (unsigned char)out[o - 1] : -1; /* the blank goes with it */
      if (last != '\n') out[o++] = '\n';
    }
  }
  lua_pushlstring(L, out, o);
  return 1;
}

/* b64_run(s, min) -> whether s holds a run of at least min bytes of the base64 alphabets
 * (A-Z a-z 0-9 + / _ -): the first test of smg.text.decoded, on every scanned string. */
static int l_b64_run(lua_State *L) {
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  size_t min = (size_t)luaL_checkinteger(L, 2);
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = s[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
        c == '/' || c == '_' || c == '-') {
      if (++run >= min) {
        lua_pushboolean(L, 1);
        return 1;
      }
    } else {
      run = 0;
    }
  }
  lua_pushboolean(L, 0);
  return 1;
}

static int is_word(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '\'';
}

/* words(s) -> { w1, w2, ... }, n: the runs of [A-Za-z0-9'] of s, as s:gmatch("[%w']+")
 * gives them, for smg.text's phrase rules. */
static int l_words(lua_State *L) {
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  lua_createtable(L, (int)(n / 6), 0);
  int k = 0;
  for (size_t i = 0; i < n;) {
    while (i < n && !is_word(s[i])) i++;
    size_t j = i;
    while (j < n && is_word(s[j])) j++;
    if (j > i) {
      lua_pushlstring(L, (const char *)s + i, j - i);
      lua_rawseti(L, -2, ++k);
    }
    i = j;
  }
  lua_pushinteger(L, k);
  return 2;
}

/* A set of literals found in one pass: literals(list) -> a userdata whose scan(text, hits)
 * sets hits[i] = true for every list[i] that occurs in text. Each byte of text is looked
 * up in a 256-entry table of the literals' first bytes and only those literals are
 * compared there: one pass over text instead of one search per literal (injection has
 * dozens, and most texts hold none). The work per byte of text is bounded by the literals
 * (the plugin's, never the sender's): at most 256 of at most 64 bytes. */
#define LIT_META "smg.literals"
#define LIT_MAX 256
#define LIT_LEN 64

typedef struct {
  int n;
  unsigned char len[LIT_MAX];
  char text[LIT_MAX][LIT_LEN];
  short first[256]; /* index of the first literal starting with that byte, -1 none */
  short next[LIT_MAX];
} smg_literals_t;

static int l_literals(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = (int)lua_objlen(L, 1);
  if (n > LIT_MAX) return luaL_error(L, "at most %d literals", LIT_MAX);
  smg_literals_t *m = lua_newuserdata(L, sizeof(*m));
  memset(m, 0, sizeof(*m));
  for (int b = 0; b < 256; b++) m->first[b] = -1;
  m->n = n;
  for (int i = n - 1; i >= 0; i--) { /* built backwards: each chain lists in order */
    lua_rawgeti(L, 1, i + 1);
    size_t len;
    const char *t = lua_tolstring(L, -1, &len);
    if (!t || len == 0 || len > LIT_LEN)
      return luaL_error(L, "literal %d: 1 to %d bytes", i + 1, LIT_LEN);
    memcpy(m->text[i], t, len);
    m->len[i] = (unsigned char)len;
    unsigned char b = (unsigned char)t[0];
    m->next[i] = m->first[b];
    m->first[b] = (short)i;
    lua_pop(L, 1);
  }
  luaL_getmetatable(L, LIT_META);
  lua_setmetatable(L, -2);
  return 1;
}

static int l_literals_scan(lua_State *L) {
  smg_literals_t *m = luaL_checkudata(L, 1, LIT_META);
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 2, &n);
  luaL_checktype(L, 3, LUA_TTABLE);
  unsigned char seen[LIT_MAX];
  memset(seen, 0, (size_t)m->n);
  int found = 0;
  for (size_t i = 0; i < n && found < m->n; i++) {
    for (int k = m->first[s[i]]; k >= 0; k = m->next[k]) {
      if (!seen[k] && m->len[k] <= n - i && memcmp(s + i, m->text[k], m->len[k]) == 0) {
        seen[k] = 1;
        found++;
        lua_pushboolean(L, 1);
        lua_rawseti(L, 3, k + 1);
      }
    }
  }
  lua_pushinteger(L, found);
  return 1;
}

void smg_lua_text_register(lua_State *L) {
  static const luaL_Reg lit_methods[] = {{"scan", l_literals_scan}, {NULL, NULL}};
  smg_lua_new_meta(L, LIT_META, lit_methods, NULL);
  static const luaL_Reg fns[] = {{"is_ascii", l_is_ascii}, {"fold", l_fold},
                                 {"b64_run", l_b64_run},   {"words", l_words},
                                 {"literals", l_literals}, {NULL, NULL}};
  luaL_register(L, NULL, fns);
}
