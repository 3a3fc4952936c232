{
  "targets": [
    {
      "target_name": "saekit_native",
      "sources": [
        "src/addon.cc",
        "src/cpu.cc",
        "src/threadpool.cc",
        "src/gemm.cc",
        "src/gemm_kernels.cc",
        "src/topk.cc",
        "src/sparse.cc",
        "src/elementwise.cc",
        "src/random.cc",
        "src/nn.cc",
        "src/tsne.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8"],
      "cflags!": ["-fno-exceptions", "-O2", "-O0"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2", "-O0", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math", "-fno-tree-loop-distribute-patterns", "-Wall", "-Wno-unused-function"],
      "ldflags": ["-pthread"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-O3", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math"]
      }
    }
  ]
}
