#!/usr/bin/env node
// decode.js — Sparkplug B payloads decoded by Eclipse Tahu's JavaScript library
// (npm `sparkplug-payload` 1.0.3, protobufjs 6), the independent reference decoder of vibgate's
// uplink tests. tests/uplink/mqtt_env.py (node_sparkplug_decoder) installs the package and runs
//
//     node decode.js <install dir containing node_modules>
//
// stdin: one payload per line, hex-encoded (an empty line is an empty payload).
// stdout: one JSON object per input line, in order.
//
// Each object is exactly what require('sparkplug-payload').get('spBv1.0').decodePayload(buf)
// returns, made JSON-safe (see toJson below). decodePayload() only sets keys whose protobuf field
// is present on the wire:
//
//   timestamp   Long (uint64)                       Payload.timestamp
//   seq         Long (uint64)                       Payload.seq
//   uuid        string
//   body        Buffer
//   metrics     array (always present, [] when empty) of {
//     name          string (absent if not on the wire, e.g. alias-only metrics)
//     alias         Long (uint64)
//     timestamp     Long (uint64)
//     type          string: "Int8" "Int16" "Int32" "Int64" "UInt8" "UInt16" "UInt32" "UInt64"
//                   "Float" "Double" "Boolean" "String" "DateTime" "Text" "UUID" "Bytes" "File"
//                   ... (Tahu's name of Metric.datatype; undefined -> absent for unknown codes)
//     value         by type (Tahu's getValue):
//                     Int8/Int16/Int32: int_value reinterpreted as signed 32-bit
//                                       (0xFFFFFFFF -> -1; 0xFF stays 255)
//                     UInt8/UInt16:     int_value as is
//                     UInt32:           long_value only, its low 32 bits (Long.toInt() of an
//                                       unsigned Long: 0..4294967295);
//                                       a UInt32 sent in int_value (as the Sparkplug 3.0 spec
//                                       says) decodes to null — a known Tahu JS quirk
//                                       (eclipse-tahu/tahu#397, #76)
//                     Int64:            long_value as signed 64-bit (Long.toSigned())
//                     UInt64/DateTime:  long_value, unsigned
//                     Float/Double:     float_value/double_value (float widened to double)
//                     Boolean:          boolean_value
//                     String/Text/UUID: string_value
//                     Bytes/File:       bytes_value (Buffer)
//                     is_null = true:   null
//     isHistorical  boolean (only if the field is on the wire)
//     isTransient   boolean (only if the field is on the wire)
//     metadata, properties (not used by vibgate)
//   }
//
// JSON conversion (toJson): Long -> number if it is a safe integer (|v| < 2^53), else
// {"$int": "<decimal>"} (Long.toString(), signedness as Tahu returned it) — lossless either way;
// Buffer -> {"$hex": "..."}; NaN/±Infinity/-0 -> {"$float": "NaN"|"Infinity"|"-Infinity"|"-0"}.
// mqtt_env.py turns $int back into int, $hex into bytes and $float into float, so Python sees
// every integer (timestamp, seq, alias, 64-bit values) as int.
//
// Added by this script (not Tahu): "_value_fields": for each metric the protobuf oneof field its
// value was carried in ("intValue", "longValue", "floatValue", "doubleValue", "booleanValue",
// "stringValue", "bytesValue", ... or null), from protobufjs' raw decode, so a test can tell
// which wire field vibgate used. A payload protobufjs cannot parse gives {"error": "..."}.
"use strict";

const path = require("path");

const installDir = process.argv[2];
if (!installDir) {
  process.stderr.write("usage: node decode.js <dir with node_modules/sparkplug-payload>\n");
  process.exit(2);
}
const modules = path.join(path.resolve(installDir), "node_modules");
const sparkplug = require(path.join(modules, "sparkplug-payload")).get("spBv1.0");
const ProtoRoot = require(path.join(modules, "sparkplug-payload", "lib", "sparkplugPayloadProto"));
const RawPayload = ProtoRoot.org.eclipse.tahu.protobuf.Payload;

function isLong(v) {
  return v !== null && typeof v === "object" && v.__isLong__ === true;
}

function toJson(v) {
  if (v === null || v === undefined) return v;
  if (isLong(v)) {
    const s = v.toString();
    const n = Number(s);
    return Number.isSafeInteger(n) ? n : { $int: s };
  }
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return { $hex: Buffer.from(v).toString("hex") };
  if (typeof v === "number") {
    if (!Number.isFinite(v) || Object.is(v, -0)) return { $float: Object.is(v, -0) ? "-0" : String(v) };
    return v;
  }
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : { $int: v.toString() };
  if (Array.isArray(v)) return v.map(toJson);
  if (typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v)) {
      if (v[k] !== undefined) o[k] = toJson(v[k]);
    }
    return o;
  }
  return v;
}

function decodeOne(hex) {
  try {
    const buf = Buffer.from(hex, "hex");
    const out = toJson(sparkplug.decodePayload(buf));
    const raw = RawPayload.decode(buf);
    out._value_fields = (raw.metrics || []).map((m) => m.value || null);
    return out;
  } catch (e) {
    return { error: String(e && e.message ? e.message : e) };
  }
}

const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", () => {
  const lines = Buffer.concat(chunks).toString("ascii").split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  const out = [];
  for (const line of lines) out.push(JSON.stringify(decodeOne(line.trim())));
  process.stdout.write(out.length ? out.join("\n") + "\n" : "");
});
