// Shared helpers for the addon: system errors with context, argument checks, type tags.
#pragma once

#include <napi.h>
#include <cerrno>
#include <cstring>
#include <string>

namespace membrane {

// Throws an Error shaped like Node's SystemError: code (errno name), errno, syscall, and the
// kernel object or path it concerned. Callers return immediately after it.
void ThrowSystemError(Napi::Env env, const char *syscall, int err, const std::string &subject);
void ThrowTypeError(Napi::Env env, const std::string &message);

// A map's name for errors: the name it was opened under (objGet's pin file name, e.g.
// "membrane_policy"), else the kernel's (at most 15 characters), else "fd N". ThrowMapError is
// ThrowSystemError with subject "map <name>" and a `map` property holding the name alone.
std::string MapName(int fd);
void ThrowMapError(Napi::Env env, const char *syscall, int err, int fd);

// Argument readers: on a wrong type they throw a TypeError and return false.
bool ArgInt(const Napi::CallbackInfo &info, size_t i, int64_t *out, const char *name);
bool ArgString(const Napi::CallbackInfo &info, size_t i, std::string *out, const char *name);
bool ArgBytes(const Napi::CallbackInfo &info, size_t i, Napi::Uint8Array *out, const char *name);

// Tags that stop a handle of one kind being passed where another is expected.
extern const napi_type_tag kBpfObjectTag;
extern const napi_type_tag kRingbufTag;

void InitBpfObject(Napi::Env env, Napi::Object exports);
void InitBpfMap(Napi::Env env, Napi::Object exports);
void InitRingbuf(Napi::Env env, Napi::Object exports);
void InitSockets(Napi::Env env, Napi::Object exports);
void InitUdp(Napi::Env env, Napi::Object exports);
void InitLinks(Napi::Env env, Napi::Object exports);
void InitControl(Napi::Env env, Napi::Object exports);

}  // namespace membrane
