// What the agent's control plane needs from the kernel beyond maps and sockets:
//   threadNice(n)      setpriority(PRIO_PROCESS, gettid(), n): Linux nice is per thread, so the
//                      control plane's thread can yield to the proxy worker threads of the same
//                      process (sched(7), "the nice value is a per-thread attribute")
//   threadNiceValue()  getpriority of the calling thread
//   ipv4AddressDump()  the namespace's IPv4 addresses by one RTM_GETADDR dump: getifaddrs also
//                      dumps every link (RTM_GETLINK, with statistics), which on a node with a
//                      thousand pod veths is megabytes per call
#include "common.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

namespace membrane {

namespace {

pid_t ThreadId() { return static_cast<pid_t>(syscall(SYS_gettid)); }

// threadNice(n): n in [-20, 19]
Napi::Value ThreadNice(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int64_t nice = 0;
  if (!ArgInt(info, 0, &nice, "nice")) return env.Null();
  if (nice < -20 || nice > 19) {
    ThrowTypeError(env, "nice must be in -20…19");
    return env.Null();
  }
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(ThreadId()), static_cast<int>(nice)) != 0) {
    ThrowSystemError(env, "setpriority", errno, "thread " + std::to_string(ThreadId()));
    return env.Null();
  }
  return env.Undefined();
}

Napi::Value ThreadNiceValue(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  errno = 0;
  int v = getpriority(PRIO_PROCESS, static_cast<id_t>(ThreadId()));
  if (v == -1 && errno != 0) {
    ThrowSystemError(env, "getpriority", errno, "thread " + std::to_string(ThreadId()));
    return env.Null();
  }
  return Napi::Number::New(env, v);
}

// ipv4AddressDump() -> every IPv4 address of every link (up or down), as `ip -4 addr show`
// lists them (IFA_LOCAL, else IFA_ADDRESS: on a point-to-point link IFA_ADDRESS is the peer's)
Napi::Value Ipv4AddressDump(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) {
    ThrowSystemError(env, "socket", errno, "NETLINK_ROUTE");
    return env.Null();
  }
  struct {
    nlmsghdr nh;
    ifaddrmsg ifa;
  } req{};
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(ifaddrmsg));
  req.nh.nlmsg_type = RTM_GETADDR;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nh.nlmsg_seq = 1;
  req.ifa.ifa_family = AF_INET;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, &req, req.nh.nlmsg_len, 0, reinterpret_cast<sockaddr *>(&kernel), sizeof kernel) < 0) {
    int err = errno;
    close(fd);
    ThrowSystemError(env, "sendto", err, "RTM_GETADDR");
    return env.Null();
  }
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  std::vector<char> buf(32768);
  for (bool done = false; !done;) {
    ssize_t len = recv(fd, buf.data(), buf.size(), 0);
    if (len < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      ThrowSystemError(env, "recv", err, "RTM_GETADDR");
      return env.Null();
    }
    if (len == 0) break;
    for (auto *nh = reinterpret_cast<nlmsghdr *>(buf.data()); NLMSG_OK(nh, static_cast<size_t>(len)); nh = NLMSG_NEXT(nh, len)) {
      if (nh->nlmsg_type == NLMSG_DONE) {
        done = true;
        break;
      }
      if (nh->nlmsg_type == NLMSG_ERROR) {
        auto *e = static_cast<nlmsgerr *>(NLMSG_DATA(nh));
        close(fd);
        ThrowSystemError(env, "RTM_GETADDR", e->error, "dump");
        return env.Null();
      }
      if (nh->nlmsg_type != RTM_NEWADDR) continue;
      auto *ifa = static_cast<ifaddrmsg *>(NLMSG_DATA(nh));
      if (ifa->ifa_family != AF_INET) continue;
      const void *local = nullptr;
      const void *address = nullptr;
      int rlen = static_cast<int>(IFA_PAYLOAD(nh));
      for (auto *rta = IFA_RTA(ifa); RTA_OK(rta, rlen); rta = RTA_NEXT(rta, rlen)) {
        if (RTA_PAYLOAD(rta) < 4) continue;
        if (rta->rta_type == IFA_LOCAL) local = RTA_DATA(rta);
        if (rta->rta_type == IFA_ADDRESS) address = RTA_DATA(rta);
      }
      const void *a = local ? local : address;
      if (!a) continue;
      char text[INET_ADDRSTRLEN];
      if (!inet_ntop(AF_INET, a, text, sizeof text)) continue;
      out.Set(n++, Napi::String::New(env, text));
    }
  }
  close(fd);
  return out;
}

}  // namespace

void InitControl(Napi::Env env, Napi::Object exports) {
  exports.Set("threadNice", Napi::Function::New(env, ThreadNice));
  exports.Set("threadNiceValue", Napi::Function::New(env, ThreadNiceValue));
  exports.Set("ipv4AddressDump", Napi::Function::New(env, Ipv4AddressDump));
}

}  // namespace membrane
