/* A minimal, fast MCP stdio server in C: the upstream every gateway in the benchmark
 * fronts, so the numbers measure the gateways and not the upstream. It answers
 * initialize, ping, tools/list (one tool, "echo") and tools/call echo. Input is read in
 * large chunks and all replies to one chunk go out in one write. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yyjson.h>

static char out[1 << 20];
static size_t out_len;

static void flush_out(void) {
  size_t off = 0;
  while (off < out_len) {
    ssize_t n = write(1, out + off, out_len - off);
    if (n <= 0) exit(0);
    off += (size_t)n;
  }
  out_len = 0;
}

static void emit(yyjson_mut_doc *doc) {
  size_t len;
  char *s = yyjson_mut_write(doc, 0, &len);
  if (!s) return;
  if (out_len + len + 1 > sizeof(out)) flush_out();
  memcpy(out + out_len, s, len);
  out[out_len + len] = '\n';
  out_len += len + 1;
  free(s);
}

static void handle(const char *line, size_t len) {
  yyjson_doc *in = yyjson_read(line, len, 0);
  if (!in) return;
  yyjson_val *root = yyjson_doc_get_root(in);
  yyjson_val *id = yyjson_obj_get(root, "id");
  const char *method = yyjson_get_str(yyjson_obj_get(root, "method"));
  if (!id || !method) {
    yyjson_doc_free(in);
    return;
  }
  yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
  yyjson_mut_val *resp = yyjson_mut_obj(doc);
  yyjson_mut_doc_set_root(doc, resp);
  yyjson_mut_obj_add_str(doc, resp, "jsonrpc", "2.0");
  yyjson_mut_obj_add_val(doc, resp, "id", yyjson_val_mut_copy(doc, id));
  yyjson_mut_val *result = yyjson_mut_obj(doc);
  if (strcmp(method, "initialize") == 0) {
    yyjson_val *params = yyjson_obj_get(root, "params");
    const char *ver = yyjson_get_str(yyjson_obj_get(params, "protocolVersion"));
    yyjson_mut_obj_add_str(doc, result, "protocolVersion", ver ? ver : "2025-06-18");
    yyjson_mut_val *caps = yyjson_mut_obj_add_obj(doc, result, "capabilities");
    yyjson_mut_obj_add_obj(doc, caps, "tools");
    yyjson_mut_val *info = yyjson_mut_obj_add_obj(doc, result, "serverInfo");
    yyjson_mut_obj_add_str(doc, info, "name", "echo-c");
    yyjson_mut_obj_add_str(doc, info, "version", "1.0.0");
  } else if (strcmp(method, "tools/list") == 0) {
    yyjson_mut_val *tools = yyjson_mut_obj_add_arr(doc, result, "tools");
    yyjson_mut_val *t = yyjson_mut_arr_add_obj(doc, tools);
    yyjson_mut_obj_add_str(doc, t, "name", "echo");
    yyjson_mut_obj_add_str(doc, t, "description", "Echoes the message back");
    yyjson_mut_val *schema = yyjson_mut_obj_add_obj(doc, t, "inputSchema");
    yyjson_mut_obj_add_str(doc, schema, "type", "object");
    yyjson_mut_val *props = yyjson_mut_obj_add_obj(doc, schema, "properties");
    yyjson_mut_val *msg = yyjson_mut_obj_add_obj(doc, props, "message");
    yyjson_mut_obj_add_str(doc, msg, "type", "string");
  } else if (strcmp(method, "tools/call") == 0) {
    yyjson_val *args = yyjson_obj_get(yyjson_obj_get(root, "params"), "arguments");
    const char *text = yyjson_get_str(yyjson_obj_get(args, "message"));
    yyjson_mut_val *content = yyjson_mut_obj_add_arr(doc, result, "content");
    yyjson_mut_val *item = yyjson_mut_arr_add_obj(doc, content);
    yyjson_mut_obj_add_str(doc, item, "type", "text");
    yyjson_mut_obj_add_strcpy(doc, item, "text", text ? text : "");
  } else if (strcmp(method, "ping") != 0) {
    yyjson_mut_val *err = yyjson_mut_obj_add_obj(doc, resp, "error");
    yyjson_mut_obj_add_int(doc, err, "code", -32601);
    yyjson_mut_obj_add_str(doc, err, "message", "Method not found");
    result = NULL;
  }
  if (result) yyjson_mut_obj_add_val(doc, resp, "result", result);
  emit(doc);
  yyjson_mut_doc_free(doc);
  yyjson_doc_free(in);
}

int main(void) {
  static char buf[1 << 20];
  size_t len = 0;
  for (;;) {
    ssize_t n = read(0, buf + len, sizeof(buf) - len);
    if (n <= 0) break;
    len += (size_t)n;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
      if (buf[i] == '\n') {
        if (i > start) handle(buf + start, i - start);
        start = i + 1;
      }
    }
    memmove(buf, buf + start, len - start);
    len -= start;
    if (len == sizeof(buf)) len = 0; /* a line longer than the buffer is dropped */
    flush_out();
  }
  flush_out();
  return 0;
}
