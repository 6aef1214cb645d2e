// Links and addresses of the calling thread's network namespace, read with the syscalls iproute2
// itself uses, so regeneration needs no `ip -j` child process: if_nametoindex (SIOCGIFINDEX) for
// an endpoint's host-side link, getifaddrs (an RTM_GETADDR netlink dump) for the node's addresses.
#include "common.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

namespace membrane {

namespace {

// linkIndex(ifname) -> ifindex, 0 when no such link exists in this namespace
Napi::Value LinkIndex(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!ArgString(info, 0, &name, "ifname")) return env.Null();
  if (name.empty() || name.size() >= IF_NAMESIZE) return Napi::Number::New(env, 0);
  unsigned int index = if_nametoindex(name.c_str());
  if (index == 0 && errno != ENODEV && errno != ENXIO) {
    ThrowSystemError(env, "if_nametoindex", errno, name);
    return env.Null();
  }
  return Napi::Number::New(env, index);
}

// ipv4Addresses() -> every IPv4 address of every link (up or down), dotted quads, as
// `ip -4 addr show` lists them
Napi::Value Ipv4Addresses(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  ifaddrs *list = nullptr;
  if (getifaddrs(&list)) {
    ThrowSystemError(env, "getifaddrs", errno, "");
    return env.Null();
  }
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (ifaddrs *a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN];
    const auto *sin = reinterpret_cast<const sockaddr_in *>(a->ifa_addr);
    if (!inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text)) continue;
    out.Set(n++, Napi::String::New(env, text));
  }
  freeifaddrs(list);
  return out;
}

}  // namespace

void InitLinks(Napi::Env env, Napi::Object exports) {
  exports.Set("linkIndex", Napi::Function::New(env, LinkIndex));
  exports.Set("ipv4Addresses", Napi::Function::New(env, Ipv4Addresses));
}

}  // namespace membrane
