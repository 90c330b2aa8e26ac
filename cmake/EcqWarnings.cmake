# ecq_target_warnings(<target> [NO_PEDANTIC])
#
# Warnings for ecq's own targets (tests, benchmarks, examples, fuzzers, header-compile checks); never put on
# the exported `ecq` target, because consumers choose their own warnings.
#   CXX  (GCC, Clang): -Wall -Wextra -Wpedantic, plus -Werror when ECQ_WARNINGS_AS_ERRORS.
#                      -Wpedantic is safe with GoogleTest / Google Benchmark: their headers are system headers.
#   CXX  (MSVC):       /W4, plus /WX.
#   CUDA (nvcc):       the host compiler gets -Wall -Wextra (-Werror); nvcc's own front end gets
#                      `--Werror all-warnings`. No -Wpedantic: nvcc's generated host code is not pedantic-clean.
# NO_PEDANTIC drops -Wpedantic, for a target that includes a third-party header that is not pedantic-clean.
include_guard(GLOBAL)

function(ecq_target_warnings target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "NO_PEDANTIC" "" "")

  set(gnu_like "$<COMPILE_LANG_AND_ID:CXX,GNU,Clang,AppleClang>")
  set(msvc "$<COMPILE_LANG_AND_ID:CXX,MSVC>")
  set(cuda "$<COMPILE_LANGUAGE:CUDA>")

  set(options
    "$<${gnu_like}:-Wall;-Wextra>"
    "$<${msvc}:/W4>")
  if(NOT arg_NO_PEDANTIC)
    list(APPEND options "$<${gnu_like}:-Wpedantic>")
  endif()

  if(ECQ_WARNINGS_AS_ERRORS)
    list(APPEND options
      "$<${gnu_like}:-Werror>"
      "$<${msvc}:/WX>"
      # SHELL: keeps `--Werror all-warnings` together (target_compile_options de-duplicates single words).
      "$<${cuda}:-Xcompiler=-Wall,-Wextra,-Werror>"
      "$<${cuda}:SHELL:--Werror all-warnings>")
  else()
    list(APPEND options "$<${cuda}:-Xcompiler=-Wall,-Wextra>")
  endif()

  target_compile_options(${target} PRIVATE ${options})
endfunction()
