// Sockets Node cannot make by itself: a transparent listener (accepts connections addressed to
// any IP, so the accepted socket's local address is the original destination) and an upstream
// connection whose SO_MARK is set before connect(), so even its SYN carries the identity mark.
#include "common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

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

// A non-blocking TCP socket for ip:port, or -1 after throwing. Shared first step of both calls.
int OpenTcp(const Napi::CallbackInfo &info, sockaddr_in *addr, std::string *subject) {
  Napi::Env env = info.Env();
  std::string ip;
  int64_t port;
  if (!ArgString(info, 0, &ip, "ip") || !ArgInt(info, 1, &port, "port")) return -1;
  if (port < 0 || port > 65535) {
    ThrowTypeError(env, "port out of range: " + std::to_string(port));
    return -1;
  }
  *addr = sockaddr_in{};
  addr->sin_family = AF_INET;
  addr->sin_port = htons(static_cast<uint16_t>(port));
  if (!ParseIPv4(env, ip, &addr->sin_addr)) return -1;
  *subject = ip + ":" + std::to_string(port);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowSystemError(env, "socket", errno, *subject);
  return fd;
}

Napi::Value FailClosing(Napi::Env env, int fd, const char *step, const std::string &subject) {
  int err = errno;
  close(fd);
  ThrowSystemError(env, step, err, subject);
  return env.Null();
}

// tcpListenTransparent(ip, port, backlog, reusePort = false) -> fd (non-blocking, for
// net.Server.listen({fd})). With reusePort, every listener on ip:port made so (by this process:
// the kernel also requires the same effective UID) is one SO_REUSEPORT group: a connection
// bpf_sk_assign'ed to any of them is placed on one member by the tuple's hash (Linux >= 6.5).
Napi::Value TcpListenTransparent(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  sockaddr_in addr;
  std::string subject;
  int64_t backlog;
  if (!ArgInt(info, 2, &backlog, "backlog")) return env.Null();
  bool reuse_port = info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
  int fd = OpenTcp(info, &addr, &subject);
  if (fd < 0) return env.Null();
  int one = 1;
  if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one)) return FailClosing(env, fd, "setsockopt(IP_TRANSPARENT)", subject);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)) return FailClosing(env, fd, "setsockopt(SO_REUSEADDR)", subject);
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one)) return FailClosing(env, fd, "setsockopt(SO_REUSEPORT)", subject);
  if (bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr)) return FailClosing(env, fd, "bind", subject);
  if (listen(fd, static_cast<int>(backlog))) return FailClosing(env, fd, "listen", subject);
  return Napi::Number::New(env, fd);
}

// tcpConnectMarked(ip, port, mark) -> fd whose non-blocking connect() is under way
Napi::Value TcpConnectMarked(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  sockaddr_in addr;
  std::string subject;
  int64_t mark;
  if (!ArgInt(info, 2, &mark, "mark")) return env.Null();
  int fd = OpenTcp(info, &addr, &subject);
  if (fd < 0) return env.Null();
  uint32_t m = static_cast<uint32_t>(mark);
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &m, sizeof m)) return FailClosing(env, fd, "setsockopt(SO_MARK)", subject);
  if (connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) && errno != EINPROGRESS) {
    return FailClosing(env, fd, "connect", subject);
  }
  return Napi::Number::New(env, fd);
}

// Completion of a non-blocking connect(), reported once: callback(errno), 0 meaning connected.
// libuv keeps one watcher per fd number, and the fd itself belongs to a net.Socket, so the
// watch runs on a dup() of it (a separate epoll registration of the same socket).
struct ConnectWatch {
  uv_poll_t poll;
  int fd;
  Napi::FunctionReference callback;
  Napi::AsyncContext *context;
  napi_env env;
};

void OnConnectClosed(uv_handle_t *h);

// The env is going (its worker thread ends) with the connect still pending: never call back,
// drop the JS references while the env can take it, and let the loop finish closing the poll.
void OnConnectEnvCleanup(void *arg) {
  auto *w = static_cast<ConnectWatch *>(arg);
  uv_poll_stop(&w->poll);
  delete w->context;
  w->context = nullptr;
  w->callback.Reset();
  uv_close(reinterpret_cast<uv_handle_t *>(&w->poll), OnConnectClosed);
}

void OnConnectClosed(uv_handle_t *h) {
  auto *w = static_cast<ConnectWatch *>(h->data);
  close(w->fd);
  delete w->context;
  w->callback.Reset();
  delete w;
}

void OnConnectReady(uv_poll_t *poll, int status, int events) {
  auto *w = static_cast<ConnectWatch *>(poll->data);
  int err = 0;
  socklen_t len = sizeof err;
  if (status < 0) err = -status;
  else if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len)) err = errno;
  uv_poll_stop(poll);
  napi_remove_env_cleanup_hook(w->env, OnConnectEnvCleanup, w);
  Napi::Env env(w->env);
  Napi::HandleScope scope(env);
  w->callback.MakeCallback(env.Global(), {Napi::Number::New(env, err)}, *w->context);
  uv_close(reinterpret_cast<uv_handle_t *>(poll), OnConnectClosed);
}

// awaitConnect(fd, callback(errno))
Napi::Value AwaitConnect(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!ArgInt(info, 0, &fd, "fd")) return env.Null();
  if (info.Length() < 2 || !info[1].IsFunction()) {
    ThrowTypeError(env, "callback must be a function");
    return env.Null();
  }
  int dupfd = fcntl(static_cast<int>(fd), F_DUPFD_CLOEXEC, 0);
  if (dupfd < 0) {
    ThrowSystemError(env, "fcntl(F_DUPFD_CLOEXEC)", errno, "fd " + std::to_string(fd));
    return env.Null();
  }
  uv_loop_t *loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  auto *w = new ConnectWatch();
  w->fd = dupfd;
  w->env = env;
  int r = uv_poll_init(loop, &w->poll, dupfd);
  if (r) {
    close(dupfd);
    delete w;
    ThrowSystemError(env, "uv_poll_init", -r, "fd " + std::to_string(fd));
    return env.Null();
  }
  w->poll.data = w;
  w->callback = Napi::Persistent(info[1].As<Napi::Function>());
  w->context = new Napi::AsyncContext(env, "membrane:connect");
  uv_poll_start(&w->poll, UV_WRITABLE | UV_DISCONNECT, OnConnectReady);
  napi_add_env_cleanup_hook(env, OnConnectEnvCleanup, w);
  return env.Undefined();
}

}  // namespace

void InitSockets(Napi::Env env, Napi::Object exports) {
  exports.Set("awaitConnect", Napi::Function::New(env, AwaitConnect));
  exports.Set("tcpListenTransparent", Napi::Function::New(env, TcpListenTransparent));
  exports.Set("tcpConnectMarked", Napi::Function::New(env, TcpConnectMarked));
}

}  // namespace membrane
