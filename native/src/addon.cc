// Entry point of the membrane_native addon: bytes in, bytes out, no policy.
#include "common.h"

namespace membrane {

const napi_type_tag kBpfObjectTag = {0x6d656d6272616e65ULL, 0x62706f626a656374ULL};
const napi_type_tag kRingbufTag = {0x6d656d6272616e65ULL, 0x72696e6762756620ULL};

static const char *ErrnoName(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case E2BIG: return "E2BIG";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case ERANGE: return "ERANGE";
    case ENOSYS: return "ENOSYS";
    case ENOTSUP: return "ENOTSUP";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EINPROGRESS: return "EINPROGRESS";
    default: return "EUNKNOWN";
  }
}

void ThrowSystemError(Napi::Env env, const char *syscall, int err, const std::string &subject) {
  if (err < 0) err = -err;
  std::string message = std::string(syscall) + " " + subject + ": " + std::strerror(err);
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, ErrnoName(err)));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  error.Set("subject", Napi::String::New(env, subject));
  error.ThrowAsJavaScriptException();
}

void ThrowTypeError(Napi::Env env, const std::string &message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
}

bool ArgInt(const Napi::CallbackInfo &info, size_t i, int64_t *out, const char *name) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    ThrowTypeError(info.Env(), std::string(name) + " must be a number");
    return false;
  }
  *out = info[i].As<Napi::Number>().Int64Value();
  return true;
}

bool ArgString(const Napi::CallbackInfo &info, size_t i, std::string *out, const char *name) {
  if (info.Length() <= i || !info[i].IsString()) {
    ThrowTypeError(info.Env(), std::string(name) + " must be a string");
    return false;
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  return true;
}

bool ArgBytes(const Napi::CallbackInfo &info, size_t i, Napi::Uint8Array *out, const char *name) {
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowTypeError(info.Env(), std::string(name) + " must be a Uint8Array");
    return false;
  }
  *out = info[i].As<Napi::Uint8Array>();
  return true;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitBpfObject(env, exports);
  InitBpfMap(env, exports);
  InitRingbuf(env, exports);
  InitSockets(env, exports);
  InitUdp(env, exports);
  InitLinks(env, exports);
  InitControl(env, exports);
  return exports;
}

}  // namespace membrane

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return membrane::Init(env, exports); }

NODE_API_MODULE(membrane_native, InitAddon)
