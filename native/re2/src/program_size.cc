// programSize(pattern) -> { size: number } | { error: string }
//
// Compiles `pattern` the way Envoy's google_re2 matcher does (re2::RE2(pattern, RE2::Quiet):
// UTF-8, no flags) and reports RE2::ProgramSize(), or RE2's own error text when it does not
// compile. Source: envoy source/common/common/regex.cc (CompiledGoogleReMatcher).
#include <napi.h>
#include <re2/re2.h>

#include <string>

namespace {

Napi::Value ProgramSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "programSize(pattern: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const std::string pattern = info[0].As<Napi::String>().Utf8Value();
  re2::RE2 re(pattern, re2::RE2::Quiet);
  Napi::Object out = Napi::Object::New(env);
  if (!re.ok()) {
    out.Set("error", Napi::String::New(env, re.error()));
    return out;
  }
  out.Set("size", Napi::Number::New(env, re.ProgramSize()));
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("programSize", Napi::Function::New(env, ProgramSize, "programSize"));
  return exports;
}

}  // namespace

NODE_API_MODULE(membrane_re2, Init)
