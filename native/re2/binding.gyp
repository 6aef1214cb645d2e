{
  "targets": [
    {
      # Google RE2's own program size (RE2::ProgramSize), the number Envoy compares with its
      # max_program_size. Matching itself uses the `re2` npm binding; this addon only measures.
      "target_name": "membrane_re2",
      "sources": ["src/program_size.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "NAPI_VERSION=8"],
      "cflags_cc": ["-O2", "-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lre2"]
    }
  ]
}
