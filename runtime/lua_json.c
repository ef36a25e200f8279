/* smg.json on yyjson. Debian 12's lua-cjson (2.1.0) cannot round-trip an empty array
 * (`[]` comes back as `{}`) and caps number precision at 14 digits, which corrupts
 * messages a gateway must forward unchanged. Here decoded arrays carry a shared metatable
 * (smg.json.array_mt) so they encode back as arrays even when empty, JSON null is one
 * sentinel (smg.json.null), and numbers keep every digit a double holds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yyjson.h>

#include "lua_vm.h"

#define MAX_DEPTH 512

static const char ARRAY_MT_KEY = 'A';

static void push_array_mt(lua_State *L) {
  lua_pushlightuserdata(L, (void *)&ARRAY_MT_KEY);
  lua_rawget(L, LUA_REGISTRYINDEX);
}

static int push_value(lua_State *L, yyjson_val *v, int depth) {
  if (depth > MAX_DEPTH) return -1;
  switch (yyjson_get_type(v)) {
    case YYJSON_TYPE_NULL:
      lua_pushlightuserdata(L, NULL);
      return 0;
    case YYJSON_TYPE_BOOL:
      lua_pushboolean(L, yyjson_get_bool(v));
      return 0;
    case YYJSON_TYPE_NUM:
      lua_pushnumber(L, yyjson_get_num(v));
      return 0;
    case YYJSON_TYPE_STR:
      lua_pushlstring(L, yyjson_get_str(v), yyjson_get_len(v));
      return 0;
    case YYJSON_TYPE_ARR: {
      size_t n = yyjson_arr_size(v), i, max;
      yyjson_val *item;
      lua_checkstack(L, 4);
      lua_createtable(L, (int)n, 0);
      yyjson_arr_foreach(v, i, max, item) {
        if (push_value(L, item, depth + 1) < 0) return -1;
        lua_rawseti(L, -2, (int)i + 1);
      }
      push_array_mt(L);
      lua_setmetatable(L, -2);
      return 0;
    }
    case YYJSON_TYPE_OBJ: {
      size_t i, max;
      yyjson_val *key, *val;
      lua_checkstack(L, 4);
      lua_createtable(L, 0, (int)yyjson_obj_size(v));
      yyjson_obj_foreach(v, i, max, key, val) {
        lua_pushlstring(L, yyjson_get_str(key), yyjson_get_len(key));
        if (push_value(L, val, depth + 1) < 0) return -1;
        lua_rawset(L, -3);
      }
      return 0;
    }
    default:
      return -1;
  }
}

int smg_lua_json_decode(lua_State *L, const char *s, size_t len) {
  yyjson_read_err err;
  yyjson_doc *doc = yyjson_read_opts((char *)s, len, 0, NULL, &err);
  if (!doc) {
    lua_pushnil(L);
    lua_pushfstring(L, "invalid JSON at byte %d: %s", (int)err.pos, err.msg);
    return 2;
  }
  int top = lua_gettop(L);
  int rc = push_value(L, yyjson_doc_get_root(doc), 0);
  yyjson_doc_free(doc);
  if (rc < 0) {
    lua_settop(L, top);
    lua_pushnil(L);
    lua_pushstring(L, "JSON nested too deeply");
    return 2;
  }
  return 1;
}

/* decode(str) -> value | nil, err */
static int l_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  return smg_lua_json_decode(L, s, len);
}

typedef struct {
  lua_State *L;
  yyjson_mut_doc *doc;
  const char *err;
} enc_t;

static int is_array(lua_State *L, int idx, size_t *n) {
  if (lua_getmetatable(L, idx)) {
    push_array_mt(L);
    int tagged = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (tagged) {
      *n = lua_objlen(L, idx);
      return 1;
    }
  }
  size_t len = lua_objlen(L, idx);
  if (len == 0) return 0; /* untagged empty table: an object */
  size_t count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TNUMBER) {
      lua_pop(L, 1);
      return 0;
    }
    count++;
  }
  *n = len;
  return count == len;
}

static yyjson_mut_val *encode_value(enc_t *e, int idx, int depth) {
  lua_State *L = e->L;
  yyjson_mut_doc *doc = e->doc;
  if (depth > MAX_DEPTH) {
    e->err = "value nested too deeply (or a cycle)";
    return NULL;
  }
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      return yyjson_mut_null(doc);
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) return yyjson_mut_null(doc);
      break;
    case LUA_TBOOLEAN:
      return yyjson_mut_bool(doc, lua_toboolean(L, idx));
    case LUA_TNUMBER: {
      double d = lua_tonumber(L, idx);
      if (isnan(d) || isinf(d)) {
        e->err = "cannot encode NaN or infinity";
        return NULL;
      }
      if (d == floor(d) && fabs(d) < 9007199254740992.0) return yyjson_mut_sint(doc, (int64_t)d);
      return yyjson_mut_real(doc, d);
    }
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      return yyjson_mut_strncpy(doc, s, len);
    }
    case LUA_TTABLE: {
      if (idx < 0) idx = lua_gettop(L) + idx + 1;
      lua_checkstack(L, 6);
      size_t n;
      if (is_array(L, idx, &n)) {
        yyjson_mut_val *arr = yyjson_mut_arr(doc);
        for (size_t i = 1; i <= n; i++) {
          lua_rawgeti(L, idx, (int)i);
          yyjson_mut_val *v = encode_value(e, -1, depth + 1);
          lua_pop(L, 1);
          if (!v) return NULL;
          yyjson_mut_arr_append(arr, v);
        }
        return arr;
      }
      yyjson_mut_val *obj = yyjson_mut_obj(doc);
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        yyjson_mut_val *k;
        if (lua_type(L, -2) == LUA_TSTRING) {
          size_t kl;
          const char *ks = lua_tolstring(L, -2, &kl);
          k = yyjson_mut_strncpy(doc, ks, kl);
        } else if (lua_type(L, -2) == LUA_TNUMBER) {
          lua_pushvalue(L, -2); /* tostring on a copy: lua_next needs the key intact */
          size_t kl;
          const char *ks = lua_tolstring(L, -1, &kl);
          k = yyjson_mut_strncpy(doc, ks, kl);
          lua_pop(L, 1);
        } else {
          lua_pop(L, 2);
          e->err = "table key is neither string nor number";
          return NULL;
        }
        yyjson_mut_val *v = encode_value(e, -1, depth + 1);
        lua_pop(L, 1);
        if (!v) {
          lua_pop(L, 1);
          return NULL;
        }
        yyjson_mut_obj_add(obj, k, v);
      }
      return obj;
    }
    default:
      break;
  }
  static char msg[64];
  snprintf(msg, sizeof(msg), "cannot encode a %s value", luaL_typename(L, idx));
  e->err = msg;
  return NULL;
}

/* encode(value) -> string | nil, err */
static int l_encode(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  enc_t e = {L, yyjson_mut_doc_new(NULL), NULL};
  if (!e.doc) return luaL_error(L, "out of memory");
  yyjson_mut_val *root = encode_value(&e, 1, 0);
  if (!root) {
    yyjson_mut_doc_free(e.doc);
    lua_pushnil(L);
    lua_pushstring(L, e.err ? e.err : "cannot encode value");
    return 2;
  }
  yyjson_mut_doc_set_root(e.doc, root);
  size_t len;
  yyjson_write_err werr;
  char *s = yyjson_mut_write_opts(e.doc, YYJSON_WRITE_ALLOW_INVALID_UNICODE, NULL, &len, &werr);
  yyjson_mut_doc_free(e.doc);
  if (!s) {
    lua_pushnil(L);
    lua_pushstring(L, werr.msg ? werr.msg : "cannot write JSON");
    return 2;
  }
  lua_pushlstring(L, s, len);
  free(s);
  return 1;
}

/* pretty(text) -> text indented by two spaces, keys in the order they came | nil, err:
 * how smg writes a config file people also edit by hand. */
static int l_pretty(lua_State *L) {
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  yyjson_read_err rerr;
  yyjson_doc *doc = yyjson_read_opts((char *)text, n, 0, NULL, &rerr);
  if (!doc) {
    lua_pushnil(L);
    lua_pushstring(L, rerr.msg ? rerr.msg : "invalid JSON");
    return 2;
  }
  size_t len;
  char *s = yyjson_write(doc, YYJSON_WRITE_PRETTY_TWO_SPACES, &len);
  yyjson_doc_free(doc);
  if (!s) return luaL_error(L, "out of memory");
  lua_pushlstring(L, s, len);
  free(s);
  return 1;
}

/* Registers json_decode, json_encode, json_null and json_array_mt on the table on top. */
void smg_lua_json_register(lua_State *L) {
  lua_pushlightuserdata(L, (void *)&ARRAY_MT_KEY);
  lua_newtable(L);
  lua_pushstring(L, "array");
  lua_setfield(L, -2, "__name");
  lua_rawset(L, LUA_REGISTRYINDEX);
  lua_pushcfunction(L, l_decode);
  lua_setfield(L, -2, "json_decode");
  lua_pushcfunction(L, l_encode);
  lua_setfield(L, -2, "json_encode");
  lua_pushcfunction(L, l_pretty);
  lua_setfield(L, -2, "json_pretty");
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "json_null");
  push_array_mt(L);
  lua_setfield(L, -2, "json_array_mt");
}
