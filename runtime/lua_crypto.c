/* smg.core crypto: base64/base64url, public-key signature verification of JWS
 * (RS256/384/512, PS256, ES256/384) against a JWK for the JWT auth provider, signing with
 * a PEM private key (client assertions), HMAC-SHA256
 * and AES-256-GCM sealed boxes. Keys are
 * built from the JWK's components with OpenSSL 3's EVP_PKEY_fromdata; nothing here is
 * hand-rolled crypto. */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#include "lua_vm.h"

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* b64encode(s[, url]) — url: base64url without padding (RFC 7515 §2). */
static int l_b64encode(lua_State *L) {
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  int url = lua_toboolean(L, 2);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16;
    if (i + 1 < n) v |= (uint32_t)s[i + 1] << 8;
    if (i + 2 < n) v |= s[i + 2];
    char q[4] = {B64[(v >> 18) & 63], B64[(v >> 12) & 63], B64[(v >> 6) & 63], B64[v & 63]};
    size_t keep = i + 2 < n ? 4 : i + 1 < n ? 3 : 2;
    for (size_t k = 0; k < 4; k++) {
      char c = q[k];
      if (k >= keep) {
        if (url) break;
        c = '=';
      } else if (url && c == '+') {
        c = '-';
      } else if (url && c == '/') {
        c = '_';
      }
      luaL_addchar(&b, c);
    }
  }
  luaL_pushresult(&b);
  return 1;
}

static int b64val(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

/* b64decode(s) -> bytes | nil: accepts both alphabets, padding optional. */
static int l_b64decode(lua_State *L) {
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  while (n > 0 && s[n - 1] == '=') n--;
  if (n % 4 == 1) return 0;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = b64val(s[i]);
    if (v < 0) return 0;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      luaL_addchar(&b, (char)((acc >> bits) & 0xff));
    }
  }
  luaL_pushresult(&b);
  return 1;
}

static BIGNUM *field_bn(lua_State *L, int jwk, const char *name) {
  lua_getfield(L, jwk, name);
  size_t n = 0;
  const char *s = lua_tolstring(L, -1, &n);
  lua_pop(L, 1);
  return s ? BN_bin2bn((const unsigned char *)s, (int)n, NULL) : NULL;
}

/* The JWK's components arrive already base64url-decoded (the Lua side decodes them). */
static EVP_PKEY *rsa_key(lua_State *L, int jwk) {
  BIGNUM *n = field_bn(L, jwk, "n"), *e = field_bn(L, jwk, "e");
  EVP_PKEY *pkey = NULL;
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM *params = NULL;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
  if (n && e && bld && ctx && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) &&
      (params = OSSL_PARAM_BLD_to_param(bld)) && EVP_PKEY_fromdata_init(ctx) > 0)
    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  EVP_PKEY_CTX_free(ctx);
  BN_free(n);
  BN_free(e);
  return pkey;
}

static EVP_PKEY *ec_key(lua_State *L, int jwk, const char *group, size_t coord) {
  size_t xl = 0, yl = 0;
  lua_getfield(L, jwk, "x");
  lua_getfield(L, jwk, "y");
  const char *x = lua_tolstring(L, -2, &xl), *y = lua_tolstring(L, -1, &yl);
  EVP_PKEY *pkey = NULL;
  unsigned char point[1 + 2 * 66];
  if (x && y && xl == coord && yl == coord) {
    point[0] = 0x04; /* uncompressed: 04 || X || Y */
    memcpy(point + 1, x, coord);
    memcpy(point + 1 + coord, y, coord);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * coord),
        OSSL_PARAM_construct_end()};
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx && EVP_PKEY_fromdata_init(ctx) > 0)
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
  }
  lua_pop(L, 2);
  return pkey;
}

/* JWS ECDSA signatures are r || s; OpenSSL verifies DER. */
static unsigned char *ecdsa_der(const unsigned char *sig, size_t len, int *der_len) {
  ECDSA_SIG *es = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(sig, (int)(len / 2), NULL),
         *s = BN_bin2bn(sig + len / 2, (int)(len / 2), NULL);
  unsigned char *der = NULL;
  *der_len = 0;
  if (es && r && s && ECDSA_SIG_set0(es, r, s)) {
    r = s = NULL; /* owned by es now */
    *der_len = i2d_ECDSA_SIG(es, &der);
  }
  BN_free(r);
  BN_free(s);
  ECDSA_SIG_free(es);
  return *der_len > 0 ? der : NULL;
}

/* A JWS algorithm: its digest, key type and (ECDSA) curve and coordinate size. */
typedef struct {
  const EVP_MD *md;
  int rsa, pss;
  const char *group;
  size_t coord;
} jws_alg_t;

/* Returns 1 and fills `a` for a supported alg, else 0. */
static int jws_alg(const char *alg, jws_alg_t *a) {
  memset(a, 0, sizeof(*a));
  if (!strcmp(alg, "RS256"))
    a->md = EVP_sha256(), a->rsa = 1;
  else if (!strcmp(alg, "RS384"))
    a->md = EVP_sha384(), a->rsa = 1;
  else if (!strcmp(alg, "RS512"))
    a->md = EVP_sha512(), a->rsa = 1;
  else if (!strcmp(alg, "PS256"))
    a->md = EVP_sha256(), a->rsa = 1, a->pss = 1;
  else if (!strcmp(alg, "ES256"))
    a->md = EVP_sha256(), a->group = "prime256v1", a->coord = 32;
  else if (!strcmp(alg, "ES384"))
    a->md = EVP_sha384(), a->group = "secp384r1", a->coord = 48;
  return a->md != NULL;
}

/* verify(alg, jwk, data, sig) -> true | false, reason. jwk: {kty, n, e} or {kty, crv, x, y}
 * with binary (decoded) components. */
static int l_verify(lua_State *L) {
  const char *alg = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  size_t dlen, slen;
  const char *data = luaL_checklstring(L, 3, &dlen);
  const unsigned char *sig = (const unsigned char *)luaL_checklstring(L, 4, &slen);
  jws_alg_t a;
  if (!jws_alg(alg, &a)) {
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "unsupported alg %s", alg);
    return 2;
  }
  EVP_PKEY *pkey = a.rsa ? rsa_key(L, 2) : ec_key(L, 2, a.group, a.coord);
  if (!pkey) {
    lua_pushboolean(L, 0);
    lua_pushstring(L, "unusable key");
    return 2;
  }
  unsigned char *der = NULL;
  int der_len = 0;
  if (!a.rsa) {
    if (slen != 2 * a.coord || !(der = ecdsa_der(sig, slen, &der_len))) {
      EVP_PKEY_free(pkey);
      lua_pushboolean(L, 0);
      lua_pushstring(L, "malformed signature");
      return 2;
    }
    sig = der, slen = (size_t)der_len;
  }
  EVP_MD_CTX *mctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pctx = NULL;
  int ok = mctx && EVP_DigestVerifyInit(mctx, &pctx, a.md, NULL, pkey) > 0;
  if (ok && a.pss)
    ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0;
  ok = ok && EVP_DigestVerify(mctx, sig, slen, (const unsigned char *)data, dlen) == 1;
  EVP_MD_CTX_free(mctx);
  EVP_PKEY_free(pkey);
  OPENSSL_free(der);
  lua_pushboolean(L, ok);
  if (ok) return 1;
  lua_pushstring(L, "bad signature");
  return 2;
}

/* sign(alg, pem_private_key, data) -> JWS signature (raw; ECDSA as r || s) | nil, err.
 * For client assertions (RFC 7523 private_key_jwt). */
static int l_sign(lua_State *L) {
  const char *alg = luaL_checkstring(L, 1);
  size_t pl, dlen;
  const char *pem = luaL_checklstring(L, 2, &pl);
  const char *data = luaL_checklstring(L, 3, &dlen);
  jws_alg_t a;
  if (!jws_alg(alg, &a)) {
    lua_pushnil(L);
    lua_pushfstring(L, "unsupported alg %s", alg);
    return 2;
  }
  BIO *bio = BIO_new_mem_buf(pem, (int)pl);
  EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  if (!pkey || (a.rsa != (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA))) {
    EVP_PKEY_free(pkey);
    lua_pushnil(L);
    lua_pushfstring(L, "the key is not a PEM %s private key", a.rsa ? "RSA" : "EC");
    return 2;
  }
  EVP_MD_CTX *mctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pctx = NULL;
  unsigned char *sig = NULL;
  size_t slen = 0;
  int ok = mctx && EVP_DigestSignInit(mctx, &pctx, a.md, NULL, pkey) > 0;
  if (ok && a.pss)
    ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0;
  ok = ok && EVP_DigestSign(mctx, NULL, &slen, (const unsigned char *)data, dlen) > 0 &&
       (sig = OPENSSL_malloc(slen)) &&
       EVP_DigestSign(mctx, sig, &slen, (const unsigned char *)data, dlen) > 0;
  EVP_MD_CTX_free(mctx);
  EVP_PKEY_free(pkey);
  if (ok && !a.rsa) { /* DER -> r || s, each left-padded to the curve's size */
    const unsigned char *p = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)slen);
    unsigned char raw[2 * 66];
    ok = es && BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)a.coord) == (int)a.coord &&
         BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + a.coord, (int)a.coord) == (int)a.coord;
    ECDSA_SIG_free(es);
    if (ok) lua_pushlstring(L, (const char *)raw, 2 * a.coord);
  } else if (ok) {
    lua_pushlstring(L, (const char *)sig, slen);
  }
  OPENSSL_free(sig);
  if (ok) return 1;
  lua_pushnil(L);
  lua_pushstring(L, "signing failed");
  return 2;
}

/* hmac_sha256(key, data) -> raw digest (webhook signatures, cache keys). */
static int l_hmac_sha256(lua_State *L) {
  size_t kl, dl;
  const char *k = luaL_checklstring(L, 1, &kl);
  const char *d = luaL_checklstring(L, 2, &dl);
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t outl = sizeof(out);
  if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, k, kl, (const unsigned char *)d, dl, out,
                 sizeof(out), &outl))
    return luaL_error(L, "hmac failed");
  lua_pushlstring(L, (const char *)out, outl);
  return 1;
}

/* ---- AES-256-GCM -----------------------------------------------------------------------
 * A sealed box is nonce (12 random bytes) || ciphertext || tag (16 bytes); `aad` is
 * authenticated, not encrypted. For state the gateway hands out or parks elsewhere and
 * must get back unread and unchanged (replicated config in Redis, request state). */
#define GCM_NONCE 12
#define GCM_TAG 16

/* One GCM pass over in[0..n) into out. Returns 1 | 0 (for open: a bad tag). */
static int gcm(int enc, const unsigned char *key, const unsigned char *nonce, const char *aad,
               size_t aadl, const unsigned char *in, size_t n, unsigned char *out,
               unsigned char *tag) {
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  int len = 0, ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) > 0 &&
                    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, GCM_NONCE, NULL) > 0 &&
                    EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) > 0 &&
                    (aadl == 0 ||
                     EVP_CipherUpdate(c, NULL, &len, (const unsigned char *)aad, (int)aadl) > 0) &&
                    (n == 0 || EVP_CipherUpdate(c, out, &len, in, (int)n) > 0);
  if (ok && !enc) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, GCM_TAG, tag) > 0;
  if (ok) ok = EVP_CipherFinal_ex(c, out + len, &len) > 0;
  if (ok && enc) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, GCM_TAG, tag) > 0;
  EVP_CIPHER_CTX_free(c);
  return ok;
}

static const unsigned char *aead_key(lua_State *L) {
  size_t kl;
  const char *k = luaL_checklstring(L, 1, &kl);
  luaL_argcheck(L, kl == 32, 1, "a 32-byte key");
  return (const unsigned char *)k;
}

/* aead_seal(key32, plaintext[, aad]) -> sealed box (raw bytes) */
static int l_aead_seal(lua_State *L) {
  const unsigned char *key = aead_key(L);
  size_t n, aadl = 0;
  const char *in = luaL_checklstring(L, 2, &n);
  const char *aad = luaL_optlstring(L, 3, "", &aadl);
  luaL_argcheck(L, n < (size_t)1 << 30, 2, "under 1 GiB");
  unsigned char *box = malloc(GCM_NONCE + n + GCM_TAG);
  if (!box) return luaL_error(L, "out of memory");
  int ok = RAND_bytes(box, GCM_NONCE) == 1 && gcm(1, key, box, aad, aadl, (const unsigned char *)in,
                                                  n, box + GCM_NONCE, box + GCM_NONCE + n);
  if (ok) lua_pushlstring(L, (const char *)box, GCM_NONCE + n + GCM_TAG);
  free(box);
  if (!ok) return luaL_error(L, "aead seal failed");
  return 1;
}

/* aead_open(key32, box[, aad]) -> plaintext | nil, "forged or corrupted" */
static int l_aead_open(lua_State *L) {
  const unsigned char *key = aead_key(L);
  size_t bl, aadl = 0;
  const unsigned char *box = (const unsigned char *)luaL_checklstring(L, 2, &bl);
  const char *aad = luaL_optlstring(L, 3, "", &aadl);
  if (bl < GCM_NONCE + GCM_TAG || bl - GCM_NONCE - GCM_TAG >= (size_t)1 << 30) {
    lua_pushnil(L);
    lua_pushstring(L, "forged or corrupted");
    return 2;
  }
  size_t n = bl - GCM_NONCE - GCM_TAG;
  unsigned char *out = malloc(n + 1);
  if (!out) return luaL_error(L, "out of memory");
  unsigned char tag[GCM_TAG];
  memcpy(tag, box + GCM_NONCE + n, GCM_TAG);
  int ok = gcm(0, key, box, aad, aadl, box + GCM_NONCE, n, out, tag);
  if (ok)
    lua_pushlstring(L, (const char *)out, n);
  else
    lua_pushnil(L);
  free(out);
  if (ok) return 1;
  lua_pushstring(L, "forged or corrupted");
  return 2;
}

void smg_lua_crypto_register(lua_State *L) {
  static const luaL_Reg fns[] = {{"b64encode", l_b64encode},     {"b64decode", l_b64decode},
                                 {"verify", l_verify},           {"sign", l_sign},
                                 {"hmac_sha256", l_hmac_sha256}, {"aead_seal", l_aead_seal},
                                 {"aead_open", l_aead_open},     {NULL, NULL}};
  luaL_register(L, NULL, fns);
}
