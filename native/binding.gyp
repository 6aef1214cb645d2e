{
  "targets": [
    {
      "target_name": "membrane_native",
      "sources": ["src/addon.cc", "src/bpf_object.cc", "src/bpf_map.cc", "src/ringbuf.cc", "src/sockets.cc", "src/udp.cc", "src/links.cc", "src/control.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # Error mode: C++ exceptions OFF. Every failure is returned to JS as a thrown Error built by
      # ThrowSystemError (code, errno, syscall, subject), and the function returns at once.
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "NAPI_VERSION=8"],
      "cflags_cc": ["-O2", "-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lbpf"]
    }
  ]
}
