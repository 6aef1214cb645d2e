// Ring buffer reader: the kernel's epoll fd for the ring is watched by libuv on the JS thread's
// loop, and draining it (ring_buffer__consume) never blocks, so the JS thread never waits.
#include "common.h"

#include <bpf/libbpf.h>
#include <uv.h>

#include <vector>

namespace membrane {

namespace {

struct RingbufHandle {
  uv_poll_t poll;
  ring_buffer *rb = nullptr;
  Napi::FunctionReference callback;
  Napi::AsyncContext *context = nullptr;
  napi_env env = nullptr;
  std::vector<std::vector<uint8_t>> pending;
  bool closed = false;
};

int OnSample(void *ctx, void *data, size_t size) {
  auto *handle = static_cast<RingbufHandle *>(ctx);
  auto *bytes = static_cast<uint8_t *>(data);
  handle->pending.emplace_back(bytes, bytes + size);
  return 0;
}

void OnReadable(uv_poll_t *poll, int status, int events) {
  auto *handle = static_cast<RingbufHandle *>(poll->data);
  if (handle->closed) return;
  ring_buffer__consume(handle->rb);
  if (handle->pending.empty()) return;
  Napi::Env env(handle->env);
  Napi::HandleScope scope(env);
  Napi::Array records = Napi::Array::New(env, handle->pending.size());
  for (size_t i = 0; i < handle->pending.size(); i++) {
    const auto &rec = handle->pending[i];
    Napi::Uint8Array arr = Napi::Uint8Array::New(env, rec.size());
    std::memcpy(arr.Data(), rec.data(), rec.size());
    records.Set(static_cast<uint32_t>(i), arr);
  }
  handle->pending.clear();
  handle->callback.MakeCallback(env.Global(), {records}, *handle->context);
}

void OnClosed(uv_handle_t *uvh) {
  auto *handle = static_cast<RingbufHandle *>(uvh->data);
  if (handle->rb) ring_buffer__free(handle->rb);
  delete handle->context;
  handle->callback.Reset();
  delete handle;
}

// ringbufOpen(mapFd, callback(records: Uint8Array[])) -> handle
Napi::Value RingbufOpen(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!ArgInt(info, 0, &fd, "mapFd")) return env.Null();
  if (info.Length() < 2 || !info[1].IsFunction()) {
    ThrowTypeError(env, "callback must be a function");
    return env.Null();
  }
  auto *handle = new RingbufHandle();
  handle->rb = ring_buffer__new(static_cast<int>(fd), OnSample, handle, nullptr);
  if (!handle->rb) {
    int err = errno;
    delete handle;
    ThrowMapError(env, "ring_buffer__new", err, static_cast<int>(fd));
    return env.Null();
  }
  uv_loop_t *loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  int r = uv_poll_init(loop, &handle->poll, ring_buffer__epoll_fd(handle->rb));
  if (r) {
    ring_buffer__free(handle->rb);
    delete handle;
    ThrowSystemError(env, "uv_poll_init", -r, "ring buffer");
    return env.Null();
  }
  handle->poll.data = handle;
  handle->env = env;
  handle->callback = Napi::Persistent(info[1].As<Napi::Function>());
  handle->context = new Napi::AsyncContext(env, "membrane:ringbuf");
  uv_poll_start(&handle->poll, UV_READABLE, OnReadable);
  auto external = Napi::External<RingbufHandle>::New(env, handle);
  external.TypeTag(&kRingbufTag);
  return external;
}

// ringbufClose(handle): stops watching; records still in the ring stay for the next reader.
Napi::Value RingbufClose(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsExternal() || !info[0].As<Napi::Object>().CheckTypeTag(&kRingbufTag)) {
    ThrowTypeError(env, "expected a ring buffer handle");
    return env.Null();
  }
  auto *handle = info[0].As<Napi::External<RingbufHandle>>().Data();
  if (handle->closed) return env.Undefined();
  handle->closed = true;
  uv_poll_stop(&handle->poll);
  uv_close(reinterpret_cast<uv_handle_t *>(&handle->poll), OnClosed);
  return env.Undefined();
}

}  // namespace

void InitRingbuf(Napi::Env env, Napi::Object exports) {
  exports.Set("ringbufOpen", Napi::Function::New(env, RingbufOpen));
  exports.Set("ringbufClose", Napi::Function::New(env, RingbufClose));
}

}  // namespace membrane
