// BPF object lifecycle: open (maps pinned by name under a pin root, reused if already there)
// → load → hand out program fds → attach through pinned TCX links → close.
#include "common.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <vector>

namespace membrane {

namespace {

// libbpf 1.1 (Debian 12) predates bpf_program__attach_tcx, but bpf_link_create passes these
// attach types straight to the kernel, which has supported them since 6.6.
constexpr int kAttachTcxIngress = 46;
constexpr int kAttachTcxEgress = 47;

struct ObjectHandle {
  bpf_object *obj = nullptr;
};

void FinalizeObject(Napi::Env, ObjectHandle *handle) {
  if (handle->obj) bpf_object__close(handle->obj);
  delete handle;
}

ObjectHandle *UnwrapObject(const Napi::CallbackInfo &info, size_t i) {
  if (info.Length() <= i || !info[i].IsExternal() ||
      !info[i].As<Napi::Object>().CheckTypeTag(&kBpfObjectTag)) {
    ThrowTypeError(info.Env(), "expected a BPF object handle");
    return nullptr;
  }
  ObjectHandle *handle = info[i].As<Napi::External<ObjectHandle>>().Data();
  if (!handle->obj) {
    ThrowTypeError(info.Env(), "the BPF object handle is closed");
    return nullptr;
  }
  return handle;
}

// loadObject(path, pinRoot) -> handle
Napi::Value LoadObject(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path, pin_root;
  if (!ArgString(info, 0, &path, "path") || !ArgString(info, 1, &pin_root, "pinRoot")) return env.Null();

  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_root.c_str());
  bpf_object *obj = bpf_object__open_file(path.c_str(), &opts);
  if (!obj) {
    ThrowSystemError(env, "bpf_object__open_file", errno, path);
    return env.Null();
  }
  int err = bpf_object__load(obj);
  if (err) {
    bpf_object__close(obj);
    ThrowSystemError(env, "bpf_object__load", err, path);
    return env.Null();
  }
  auto *handle = new ObjectHandle{obj};
  auto external = Napi::External<ObjectHandle>::New(env, handle, FinalizeObject);
  external.TypeTag(&kBpfObjectTag);
  return external;
}

// programFd(handle, name) -> fd, valid while the object is open
Napi::Value ProgramFd(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  ObjectHandle *handle = UnwrapObject(info, 0);
  std::string name;
  if (!handle || !ArgString(info, 1, &name, "name")) return env.Null();
  bpf_program *prog = bpf_object__find_program_by_name(handle->obj, name.c_str());
  if (!prog) {
    ThrowSystemError(env, "bpf_object__find_program_by_name", ENOENT, name);
    return env.Null();
  }
  return Napi::Number::New(env, bpf_program__fd(prog));
}

// closeObject(handle): programs stay alive through the links that use them.
Napi::Value CloseObject(const Napi::CallbackInfo &info) {
  ObjectHandle *handle = UnwrapObject(info, 0);
  if (handle) {
    bpf_object__close(handle->obj);
    handle->obj = nullptr;
  }
  return info.Env().Undefined();
}

// attachTcx(progFd, ifindex, "ingress"|"egress", linkPinPath) -> "created"|"replaced"
// An existing pinned link is updated in place, so the old program keeps enforcing until the
// new one takes over in one step: there is no moment without a program on the link.
Napi::Value AttachTcx(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int64_t prog_fd, ifindex;
  std::string direction, pin;
  if (!ArgInt(info, 0, &prog_fd, "progFd") || !ArgInt(info, 1, &ifindex, "ifindex") ||
      !ArgString(info, 2, &direction, "direction") || !ArgString(info, 3, &pin, "linkPinPath"))
    return env.Null();
  int attach_type;
  if (direction == "ingress") {
    attach_type = kAttachTcxIngress;
  } else if (direction == "egress") {
    attach_type = kAttachTcxEgress;
  } else {
    ThrowTypeError(env, "direction must be \"ingress\" or \"egress\"");
    return env.Null();
  }

  int link_fd = bpf_obj_get(pin.c_str());
  if (link_fd >= 0) {
    int err = bpf_link_update(link_fd, static_cast<int>(prog_fd), nullptr);
    int saved = errno;
    close(link_fd);
    if (err) {
      ThrowSystemError(env, "bpf_link_update", saved, pin);
      return env.Null();
    }
    return Napi::String::New(env, "replaced");
  }

  link_fd = bpf_link_create(static_cast<int>(prog_fd), static_cast<int>(ifindex),
                            static_cast<bpf_attach_type>(attach_type), nullptr);
  if (link_fd < 0) {
    ThrowSystemError(env, "bpf_link_create", -link_fd, pin);
    return env.Null();
  }
  if (bpf_obj_pin(link_fd, pin.c_str())) {
    int saved = errno;
    close(link_fd);
    ThrowSystemError(env, "bpf_obj_pin", saved, pin);
    return env.Null();
  }
  close(link_fd);
  return Napi::String::New(env, "created");
}

// numPossibleCpus() -> number of per-CPU slots in a per-CPU map value
Napi::Value NumPossibleCpus(const Napi::CallbackInfo &info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) {
    ThrowSystemError(info.Env(), "libbpf_num_possible_cpus", n, "");
    return info.Env().Null();
  }
  return Napi::Number::New(info.Env(), n);
}

// progTestRun(progFd, packet, { ifindex, mark }) -> { retval, mark }
// Runs a tc program once on a packet (BPF_PROG_TEST_RUN), for the datapath's own tests.
Napi::Value ProgTestRun(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int64_t prog_fd;
  Napi::Uint8Array packet;
  if (!ArgInt(info, 0, &prog_fd, "progFd") || !ArgBytes(info, 1, &packet, "packet")) return env.Null();
  __sk_buff ctx{};
  if (info.Length() > 2 && info[2].IsObject()) {
    Napi::Object o = info[2].As<Napi::Object>();
    if (o.Get("ifindex").IsNumber()) ctx.ifindex = o.Get("ifindex").As<Napi::Number>().Uint32Value();
    if (o.Get("mark").IsNumber()) ctx.mark = o.Get("mark").As<Napi::Number>().Uint32Value();
  }
  std::vector<uint8_t> out(packet.ByteLength() + 256);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet.Data(), .data_out = out.data(),
              .data_size_in = static_cast<__u32>(packet.ByteLength()), .data_size_out = static_cast<__u32>(out.size()),
              .ctx_in = &ctx, .ctx_out = &ctx, .ctx_size_in = sizeof ctx, .ctx_size_out = sizeof ctx, .repeat = 1);
  if (bpf_prog_test_run_opts(static_cast<int>(prog_fd), &opts)) {
    ThrowSystemError(env, "bpf_prog_test_run_opts", errno, "fd " + std::to_string(prog_fd));
    return env.Null();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("retval", Napi::Number::New(env, static_cast<int32_t>(opts.retval)));
  result.Set("mark", Napi::Number::New(env, ctx.mark));
  return result;
}

}  // namespace

void InitBpfObject(Napi::Env env, Napi::Object exports) {
  exports.Set("loadObject", Napi::Function::New(env, LoadObject));
  exports.Set("programFd", Napi::Function::New(env, ProgramFd));
  exports.Set("closeObject", Napi::Function::New(env, CloseObject));
  exports.Set("attachTcx", Napi::Function::New(env, AttachTcx));
  exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus));
  exports.Set("progTestRun", Napi::Function::New(env, ProgTestRun));
}

}  // namespace membrane
