// Map access on pinned maps: get, update, lookup, delete, iterate, batched lookups and updates.
// Keys and values are raw bytes; their layout is the business of src/datapath.
#include "common.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include <mutex>
#include <unordered_map>
#include <vector>

namespace membrane {

namespace {

// fd -> the name the map was opened under. Worker threads share the process's fds, so the
// table is process-wide and locked.
std::mutex names_mutex;
std::unordered_map<int, std::string> names;

void RememberName(int fd, const std::string &path) {
  std::string name = path.substr(path.find_last_of('/') + 1);
  std::lock_guard<std::mutex> lock(names_mutex);
  names[fd] = name;
}

void ForgetName(int fd) {
  std::lock_guard<std::mutex> lock(names_mutex);
  names.erase(fd);
}

}  // namespace

std::string MapName(int fd) {
  {
    std::lock_guard<std::mutex> lock(names_mutex);
    auto it = names.find(fd);
    if (it != names.end()) return it->second;
  }
  struct bpf_map_info info = {};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.name[0]) return std::string(info.name);
  return "fd " + std::to_string(fd);
}

void ThrowMapError(Napi::Env env, const char *syscall, int err, int fd) {
  std::string name = MapName(fd);
  ThrowSystemError(env, syscall, err, "map " + name);
  // ThrowSystemError left the error pending: add the map's name to it.
  Napi::Error pending = env.GetAndClearPendingException();
  pending.Set("map", Napi::String::New(env, name));
  pending.ThrowAsJavaScriptException();
}

namespace {

// objGet(path) -> fd
Napi::Value ObjGet(const Napi::CallbackInfo &info) {
  std::string path;
  if (!ArgString(info, 0, &path, "path")) return info.Env().Null();
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    ThrowSystemError(info.Env(), "bpf_obj_get", errno, path);
    return info.Env().Null();
  }
  RememberName(fd, path);
  return Napi::Number::New(info.Env(), fd);
}

// mapUpdate(fd, key, value, flags)
Napi::Value MapUpdate(const Napi::CallbackInfo &info) {
  int64_t fd, flags;
  Napi::Uint8Array key, value;
  if (!ArgInt(info, 0, &fd, "fd") || !ArgBytes(info, 1, &key, "key") || !ArgBytes(info, 2, &value, "value") ||
      !ArgInt(info, 3, &flags, "flags"))
    return info.Env().Null();
  if (bpf_map_update_elem(static_cast<int>(fd), key.Data(), value.Data(), static_cast<__u64>(flags))) {
    ThrowMapError(info.Env(), "bpf_map_update_elem", errno, static_cast<int>(fd));
    return info.Env().Null();
  }
  return info.Env().Undefined();
}

// mapLookup(fd, key, valueSize) -> Uint8Array | null
Napi::Value MapLookup(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int64_t fd, value_size;
  Napi::Uint8Array key;
  if (!ArgInt(info, 0, &fd, "fd") || !ArgBytes(info, 1, &key, "key") || !ArgInt(info, 2, &value_size, "valueSize"))
    return env.Null();
  Napi::Uint8Array out = Napi::Uint8Array::New(env, static_cast<size_t>(value_size));
  if (bpf_map_lookup_elem(static_cast<int>(fd), key.Data(), out.Data())) {
    if (errno == ENOENT) return env.Null();
    ThrowMapError(env, "bpf_map_lookup_elem", errno, static_cast<int>(fd));
    return env.Null();
  }
  return out;
}

// mapDelete(fd, key) -> boolean (false if absent)
Napi::Value MapDelete(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int64_t fd;
  Napi::Uint8Array key;
  if (!ArgInt(info, 0, &fd, "fd") || !ArgBytes(info, 1, &key, "key")) return env.Null();
  if (bpf_map_delete_elem(static_cast<int>(fd), key.Data())) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    ThrowMapError(env, "bpf_map_delete_elem", errno, static_cast<int>(fd));
    return env.Null();
  }
  return Napi::Boolean::New(env, true);
}

// mapDump(fd, keySize, valueSize) -> { keys, values, count }: every entry, via next_key + lookup.
// Entries deleted between the two calls are skipped, so the dump is a consistent-enough view
// for reconciliation (the caller diffs against desired state and writes again).
Napi::Value MapDump(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int64_t fd, key_size, value_size;
  if (!ArgInt(info, 0, &fd, "fd") || !ArgInt(info, 1, &key_size, "keySize") ||
      !ArgInt(info, 2, &value_size, "valueSize"))
    return env.Null();
  std::vector<uint8_t> keys, values;
  std::vector<uint8_t> cur(static_cast<size_t>(key_size)), next(static_cast<size_t>(key_size));
  std::vector<uint8_t> value(static_cast<size_t>(value_size));
  const void *prev = nullptr;
  size_t count = 0;
  for (;;) {
    if (bpf_map_get_next_key(static_cast<int>(fd), prev, next.data())) {
      if (errno == ENOENT) break;
      ThrowMapError(env, "bpf_map_get_next_key", errno, static_cast<int>(fd));
      return env.Null();
    }
    if (bpf_map_lookup_elem(static_cast<int>(fd), next.data(), value.data()) == 0) {
      keys.insert(keys.end(), next.begin(), next.end());
      values.insert(values.end(), value.begin(), value.end());
      count++;
    }
    cur.swap(next);
    prev = cur.data();
  }
  Napi::Object result = Napi::Object::New(env);
  Napi::Uint8Array k = Napi::Uint8Array::New(env, keys.size());
  Napi::Uint8Array v = Napi::Uint8Array::New(env, values.size());
  if (!keys.empty()) std::memcpy(k.Data(), keys.data(), keys.size());
  if (!values.empty()) std::memcpy(v.Data(), values.data(), values.size());
  result.Set("keys", k);
  result.Set("values", v);
  result.Set("count", Napi::Number::New(env, static_cast<double>(count)));
  return result;
}

// mapInfo(fd) -> { type, keySize, valueSize, maxEntries }: BPF_OBJ_GET_INFO_BY_FD, so callers read
// a map's capacity from the kernel instead of repeating the C definition.
Napi::Value MapInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!ArgInt(info, 0, &fd, "fd")) return env.Null();
  struct bpf_map_info mi = {};
  __u32 len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(static_cast<int>(fd), &mi, &len)) {
    ThrowMapError(env, "bpf_obj_get_info_by_fd", errno, static_cast<int>(fd));
    return env.Null();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("type", Napi::Number::New(env, mi.type));
  result.Set("keySize", Napi::Number::New(env, mi.key_size));
  result.Set("valueSize", Napi::Number::New(env, mi.value_size));
  result.Set("maxEntries", Napi::Number::New(env, mi.max_entries));
  return result;
}

// mapLookupBatch(fd, keySize, valueSize, maxEntries) -> { keys, values, count }: the whole map in
// BPF_MAP_LOOKUP_BATCH calls of up to maxEntries entries (one call for an array read whole).
// valueSize is what one entry occupies in the output: for a per-CPU map, the value rounded up to
// 8 bytes times the possible CPUs. ENOENT ends the walk (the kernel's "no more entries").
Napi::Value MapLookupBatch(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int64_t fd, key_size, value_size, max_entries;
  if (!ArgInt(info, 0, &fd, "fd") || !ArgInt(info, 1, &key_size, "keySize") ||
      !ArgInt(info, 2, &value_size, "valueSize") || !ArgInt(info, 3, &max_entries, "maxEntries"))
    return env.Null();
  if (key_size <= 0 || value_size <= 0 || max_entries <= 0) {
    ThrowTypeError(env, "keySize, valueSize and maxEntries must be positive");
    return env.Null();
  }
  const size_t ks = static_cast<size_t>(key_size), vs = static_cast<size_t>(value_size);
  const size_t cap = static_cast<size_t>(max_entries);
  std::vector<uint8_t> keys(ks * cap), values(vs * cap);
  // The kernel's batch cursor for array and hash maps is a u32 index/bucket.
  uint32_t in_batch = 0, out_batch = 0;
  size_t total = 0;
  bool first = true;
  while (total < cap) {
    __u32 n = static_cast<__u32>(cap - total);
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int rc = bpf_map_lookup_batch(static_cast<int>(fd), first ? nullptr : &in_batch, &out_batch,
                                  keys.data() + total * ks, values.data() + total * vs, &n, &opts);
    int err = rc ? errno : 0;
    if (rc && err != ENOENT) {
      ThrowMapError(env, "bpf_map_lookup_batch", err, static_cast<int>(fd));
      return env.Null();
    }
    total += n;
    if (err == ENOENT || n == 0) break;
    in_batch = out_batch;
    first = false;
  }
  Napi::Object result = Napi::Object::New(env);
  Napi::Uint8Array k = Napi::Uint8Array::New(env, total * ks);
  Napi::Uint8Array v = Napi::Uint8Array::New(env, total * vs);
  if (total) {
    std::memcpy(k.Data(), keys.data(), total * ks);
    std::memcpy(v.Data(), values.data(), total * vs);
  }
  result.Set("keys", k);
  result.Set("values", v);
  result.Set("count", Napi::Number::New(env, static_cast<double>(total)));
  return result;
}

// mapUpdateBatch(fd, keys, values, count): one BPF_MAP_UPDATE_BATCH syscall. Maps that do not
// support batching (LPM tries on older kernels) fall back to one update per entry.
Napi::Value MapUpdateBatch(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int64_t fd, count;
  Napi::Uint8Array keys, values;
  if (!ArgInt(info, 0, &fd, "fd") || !ArgBytes(info, 1, &keys, "keys") || !ArgBytes(info, 2, &values, "values") ||
      !ArgInt(info, 3, &count, "count"))
    return env.Null();
  if (count <= 0) return env.Undefined();
  if (keys.ByteLength() % count || values.ByteLength() % count) {
    ThrowTypeError(env, "keys and values must hold count entries each");
    return env.Null();
  }
  __u32 n = static_cast<__u32>(count);
  LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
  if (bpf_map_update_batch(static_cast<int>(fd), keys.Data(), values.Data(), &n, &opts) == 0)
    return env.Undefined();
  if (errno != EINVAL && errno != ENOTSUP && errno != EOPNOTSUPP) {
    ThrowMapError(env, "bpf_map_update_batch", errno, static_cast<int>(fd));
    return env.Null();
  }
  size_t ks = keys.ByteLength() / count, vs = values.ByteLength() / count;
  for (int64_t i = 0; i < count; i++) {
    if (bpf_map_update_elem(static_cast<int>(fd), keys.Data() + i * ks, values.Data() + i * vs, BPF_ANY)) {
      ThrowMapError(env, "bpf_map_update_elem", errno, static_cast<int>(fd));
      return env.Null();
    }
  }
  return env.Undefined();
}

// closeFd(fd)
Napi::Value CloseFd(const Napi::CallbackInfo &info) {
  int64_t fd;
  if (!ArgInt(info, 0, &fd, "fd")) return info.Env().Null();
  ForgetName(static_cast<int>(fd));
  close(static_cast<int>(fd));
  return info.Env().Undefined();
}

}  // namespace

void InitBpfMap(Napi::Env env, Napi::Object exports) {
  exports.Set("objGet", Napi::Function::New(env, ObjGet));
  exports.Set("mapUpdate", Napi::Function::New(env, MapUpdate));
  exports.Set("mapLookup", Napi::Function::New(env, MapLookup));
  exports.Set("mapDelete", Napi::Function::New(env, MapDelete));
  exports.Set("mapDump", Napi::Function::New(env, MapDump));
  exports.Set("mapInfo", Napi::Function::New(env, MapInfo));
  exports.Set("mapLookupBatch", Napi::Function::New(env, MapLookupBatch));
  exports.Set("mapUpdateBatch", Napi::Function::New(env, MapUpdateBatch));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
}

}  // namespace membrane
