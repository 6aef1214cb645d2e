// Sockets Node cannot make by itself: a transparent listener (accepts connections addressed to
// any IP, so the accepted socket's local address is the original destination) and an upstream
// connection whose SO_MARK is set before connect(), so even its SYN carries the identity mark.
#include "common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif

namespace membrane {

namespace {

bool ParseIPv4(Napi::Env env, const std::string &ip, in_addr *out) {
  if (inet_pton(AF_INET, ip.c_str(), out) != 1) {
    ThrowTypeError(env, "not an IPv4 address: " + ip);
    return false;
  }
  return true;
}

// tcpListenTransparent(ip, port, backlog) -> fd (non-blocking, for net.Server.listen({fd}))
Napi::Value TcpListenTransparent(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string ip;
  int64_t port, backlog;
  if (!ArgString(info, 0, &ip, "ip") || !ArgInt(info, 1, &port, "port") || !ArgInt(info, 2, &backlog, "backlog"))
    return env.Null();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (!ParseIPv4(env, ip, &addr.sin_addr)) return env.Null();
  std::string subject = ip + ":" + std::to_string(port);

  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ThrowSystemError(env, "socket", errno, subject);
    return env.Null();
  }
  int one = 1;
  const char *step = nullptr;
  if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one)) step = "setsockopt(IP_TRANSPARENT)";
  else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)) step = "setsockopt(SO_REUSEADDR)";
  else if (bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr)) step = "bind";
  else if (listen(fd, static_cast<int>(backlog))) step = "listen";
  if (step) {
    int err = errno;
    close(fd);
    ThrowSystemError(env, step, err, subject);
    return env.Null();
  }
  return Napi::Number::New(env, fd);
}

// tcpConnectMarked(ip, port, mark) -> fd whose non-blocking connect() is under way
Napi::Value TcpConnectMarked(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string ip;
  int64_t port, mark;
  if (!ArgString(info, 0, &ip, "ip") || !ArgInt(info, 1, &port, "port") || !ArgInt(info, 2, &mark, "mark"))
    return env.Null();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (!ParseIPv4(env, ip, &addr.sin_addr)) return env.Null();
  std::string subject = ip + ":" + std::to_string(port);

  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ThrowSystemError(env, "socket", errno, subject);
    return env.Null();
  }
  uint32_t m = static_cast<uint32_t>(mark);
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &m, sizeof m)) {
    int err = errno;
    close(fd);
    ThrowSystemError(env, "setsockopt(SO_MARK)", err, subject);
    return env.Null();
  }
  if (connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) && errno != EINPROGRESS) {
    int err = errno;
    close(fd);
    ThrowSystemError(env, "connect", err, subject);
    return env.Null();
  }
  return Napi::Number::New(env, fd);
}

}  // namespace

void InitSockets(Napi::Env env, Napi::Object exports) {
  exports.Set("tcpListenTransparent", Napi::Function::New(env, TcpListenTransparent));
  exports.Set("tcpConnectMarked", Napi::Function::New(env, TcpConnectMarked));
}

}  // namespace membrane
