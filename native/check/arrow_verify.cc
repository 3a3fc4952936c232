// Checks Arrow IPC stream files as pyarrow's reader does before it trusts one: every
// message's metadata must pass FlatBuffers' verifier against Arrow's own schema (alignment,
// offsets, nesting), bodies must start on multiples of 8, each record batch's buffers must
// be aligned and lie inside its body, and the stream must end with the end-of-stream marker.
// Built by scripts/check-arrow-stream.sh against the Message_generated.h that flatc writes
// from Arrow's format/Message.fbs; not part of the addon.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "Message_generated.h"

using namespace org::apache::arrow::flatbuf;

static int check(const char* path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<uint8_t> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t at = 0;
  int messages = 0;
  while (at + 8 <= data.size()) {
    int32_t marker, length;
    std::memcpy(&marker, &data[at], 4);
    std::memcpy(&length, &data[at + 4], 4);
    if (marker != -1) return std::printf("%s: no continuation marker at %zu\n", path, at), 1;
    if (length == 0) {
      if (at + 8 != data.size()) return std::printf("%s: %zu bytes after the end marker\n", path, data.size() - at - 8), 1;
      std::printf("%s: %d messages verified\n", path, messages);
      return 0;
    }
    if (length < 0 || at + 8 + length > data.size() || (at + 8 + length) % 8 != 0)
      return std::printf("%s: message %d at %zu: metadata length %d (the body must start on a multiple of 8)\n", path, messages, at, length), 1;
    // An 8-aligned copy, as Arrow reads metadata into.
    std::vector<uint64_t> aligned((length + 7) / 8);
    std::memcpy(aligned.data(), &data[at + 8], length);
    const uint8_t* meta = reinterpret_cast<const uint8_t*>(aligned.data());
    flatbuffers::Verifier verifier(meta, length, 128, 1000000);
    if (!VerifyMessageBuffer(verifier)) return std::printf("%s: message %d at %zu fails FlatBuffers' verifier\n", path, messages, at), 1;
    const Message* m = GetMessage(meta);
    const long long body = m->bodyLength();
    if (body < 0 || body % 8 != 0 || at + 8 + length + body > data.size())
      return std::printf("%s: message %d: body of %lld bytes\n", path, messages, body), 1;
    if (messages == 0 && m->header_as_Schema() == nullptr) return std::printf("%s: the first message is not the schema\n", path), 1;
    if (const RecordBatch* rb = m->header_as_RecordBatch()) {
      if (!rb->nodes() || !rb->buffers()) return std::printf("%s: message %d: a record batch without nodes or buffers\n", path, messages), 1;
      for (const Buffer* b : *rb->buffers())
        if (b->offset() % 8 != 0 || b->offset() < 0 || b->length() < 0 || b->offset() + b->length() > body)
          return std::printf("%s: message %d: a buffer at %lld of %lld bytes in a %lld-byte body\n", path, messages,
                             static_cast<long long>(b->offset()), static_cast<long long>(b->length()), body), 1;
    }
    at += 8 + length + body;
    messages++;
  }
  return std::printf("%s: no end-of-stream marker\n", path), 1;
}

int main(int argc, char** argv) {
  int failed = 0;
  for (int i = 1; i < argc; i++) failed |= check(argv[i]);
  return failed;
}
