// storage/src/codec.hpp — encoding of metric lists (protobuf, storage/proto/outbox.proto) for
// the BLOB columns, and float32 little-endian sample blobs. Internal to storage.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "vibgate/common/outbox.hpp"

namespace vibgate::storage::detail {

// Serializes `metrics` into `out` (replacing its content). Any thread; no errors (protobuf
// serialization of these messages cannot fail short of allocation failure).
void encode_metrics(const std::vector<Metric>& metrics, std::string& out);

// Parses a blob written by encode_metrics. Returns false (and leaves `out` partly filled) on a
// malformed blob; an empty blob is an empty list. A metric with no value set decodes as 0.0.
bool decode_metrics(const void* data, std::size_t size, std::vector<Metric>& out);

// float32 samples <-> little-endian bytes, independent of the host byte order.
std::string encode_samples(const std::vector<float>& samples);
std::vector<float> decode_samples(const void* data, std::size_t size);

}  // namespace vibgate::storage::detail
