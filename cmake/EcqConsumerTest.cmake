# Drives one consumer test (cmake -P), so that each way of consuming ecq is a single ctest test.
#
#   MODE=find_package      cmake --install <ECQ_BINARY_DIR> into <WORK_DIR>/prefix, then configure
#                          tests/consumer/find_package with CMAKE_PREFIX_PATH=<WORK_DIR>/prefix
#   MODE=add_subdirectory  configure tests/consumer/add_subdirectory with ECQ_SOURCE_DIR=<ECQ_SOURCE_DIR>
# then build the consumer and run its own ctest (which runs the consumer executable).
#
# Inputs (-D): MODE, ECQ_SOURCE_DIR, ECQ_BINARY_DIR, ECQ_VERSION, CONSUMER_SOURCE_DIR, WORK_DIR, CONFIG,
#              GENERATOR, MAKE_PROGRAM, CXX_COMPILER, CXX_FLAGS, CTEST_COMMAND.
# WORK_DIR is wiped first: every run configures from scratch, so nothing stale (an old install, an old
# cache entry) can make the test pass.
cmake_minimum_required(VERSION 3.21)

foreach(var MODE ECQ_SOURCE_DIR ECQ_BINARY_DIR ECQ_VERSION CONSUMER_SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER
            CTEST_COMMAND)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "EcqConsumerTest.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT CONFIG)
  set(CONFIG Release)
endif()

# Runs a command, echoing it first; any failure ends the test.
function(run)
  string(REPLACE ";" " " shown "${ARGN}")
  message(STATUS "ecq consumer test (${MODE}): ${shown}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "ecq consumer test (${MODE}) failed (exit ${rc}): ${shown}")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(configure_args
  -S "${CONSUMER_SOURCE_DIR}"
  -B "${WORK_DIR}/build"
  -G "${GENERATOR}"
  "-DCMAKE_BUILD_TYPE=${CONFIG}"
  "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
  "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
  "-DECQ_EXPECTED_VERSION=${ECQ_VERSION}"
  # Only the prefix we install into may satisfy find_package: no user or system package registry.
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
if(MAKE_PROGRAM)
  list(APPEND configure_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()

if(MODE STREQUAL "find_package")
  set(prefix "${WORK_DIR}/prefix")
  run("${CMAKE_COMMAND}" --install "${ECQ_BINARY_DIR}" --prefix "${prefix}" --config "${CONFIG}")
  list(APPEND configure_args "-DCMAKE_PREFIX_PATH=${prefix}" "-DECQ_EXPECTED_PREFIX=${prefix}")
elseif(MODE STREQUAL "add_subdirectory")
  list(APPEND configure_args "-DECQ_SOURCE_DIR=${ECQ_SOURCE_DIR}")
else()
  message(FATAL_ERROR "EcqConsumerTest.cmake: unknown MODE '${MODE}'")
endif()

run("${CMAKE_COMMAND}" ${configure_args})
run("${CMAKE_COMMAND}" --build "${WORK_DIR}/build" --config "${CONFIG}")
run("${CTEST_COMMAND}" --test-dir "${WORK_DIR}/build" -C "${CONFIG}" --output-on-failure --no-tests=error)
