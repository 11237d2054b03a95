# Run by the install.package test (see install_test.cmake for the arguments): installs unio from
# BUILD_DIR into WORK_DIR/prefix and uses it from a fresh project, twice: through
# find_package(unio) and through pkg-config. Fails with a message at the first problem.
cmake_minimum_required(VERSION 3.21)

function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install test: ${what} failed (${rc}):\n${ARGN}\n${out}\n${err}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
  message(STATUS "ok: ${what}")
endfunction()

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

# 1. Install.
set(config_args)
if(CONFIG)
  set(config_args --config ${CONFIG})
endif()
step("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} ${config_args})
foreach(f ${INCLUDEDIR}/unio/unio.hpp ${LIBDIR}/cmake/unio/unioConfig.cmake
          ${LIBDIR}/cmake/unio/unioConfigVersion.cmake ${LIBDIR}/cmake/unio/unioTargets.cmake
          ${LIBDIR}/pkgconfig/unio.pc)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "install test: ${f} was not installed")
  endif()
endforeach()

# 2. The public headers never expose a backend's library.
file(GLOB_RECURSE headers ${prefix}/${INCLUDEDIR}/*)
foreach(h ${headers})
  file(STRINGS ${h} bad REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"](liburing|libaio)(/[^>\"]*)?\\.h[>\"]")
  if(bad)
    message(FATAL_ERROR "install test: ${h} includes a backend library header: ${bad}")
  endif()
endforeach()
list(LENGTH headers n)
message(STATUS "ok: ${n} installed headers include neither liburing.h nor libaio.h")

# 3. find_package(unio 0.1 REQUIRED) from a fresh project, built with this build's compiler and
#    flags (a sanitizer build's static library needs the sanitizer runtime in the program).
set(gen_args)
if(GENERATOR)
  list(APPEND gen_args -G ${GENERATOR})
endif()
if(MAKE_PROGRAM)
  list(APPEND gen_args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()
if(CONFIG)
  list(APPEND gen_args -DCMAKE_BUILD_TYPE=${CONFIG})
endif()
step("configure the consumer"
  ${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/consumer ${gen_args}
  -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DUNIO_CONSUMER_WERROR=ON
  -DCMAKE_CXX_COMPILER=${CXX} "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}")
file(STRINGS ${WORK_DIR}/consumer/CMakeCache.txt found REGEX "^unio_DIR:")
string(FIND "${found}" "${prefix}/" at)
if(at LESS 0)
  message(FATAL_ERROR "install test: the consumer found unio elsewhere: ${found}")
endif()
step("build the consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/consumer ${config_args})
set(exe ${WORK_DIR}/consumer/unio_consumer)
if(NOT EXISTS ${exe} AND CONFIG)
  set(exe ${WORK_DIR}/consumer/${CONFIG}/unio_consumer)
endif()
step("run the find_package consumer" ${exe})
message(STATUS "${step_output}")
if(NOT step_output MATCHES "backend [a-z_]+")
  message(FATAL_ERROR "install test: the consumer did not report its backend")
endif()

# 4. The pkg-config file, from a relocated prefix: `pkg-config --cflags --libs unio` and a
#    program compiled and linked with exactly those flags.
if(NOT PKG_CONFIG)
  message(FATAL_ERROR "install test: pkg-config is not installed (scripts/deps.sh installs it)")
endif()
set(ENV{PKG_CONFIG_PATH} ${prefix}/${LIBDIR}/pkgconfig)
step("pkg-config --modversion unio" ${PKG_CONFIG} --modversion unio)
string(STRIP "${step_output}" v)
if(NOT v STREQUAL VERSION)
  message(FATAL_ERROR "install test: unio.pc says version ${v}, the project is ${VERSION}")
endif()
# unio's own dependencies (liburing, libaio, ...) are only for a static link: Libs.private and
# Requires.private, never in plain --libs.
step("pkg-config --libs unio" ${PKG_CONFIG} --libs unio)
if(step_output MATCHES "uring|aio")
  message(FATAL_ERROR "install test: `pkg-config --libs unio` lists a backend library: ${step_output}")
endif()
set(pc_static)
if(EXISTS ${prefix}/${LIBDIR}/libunio.a)
  set(pc_static --static)
endif()
step("pkg-config ${pc_static} --cflags --libs unio" ${PKG_CONFIG} ${pc_static} --cflags --libs unio)
string(STRIP "${step_output}" pc_flags)
message(STATUS "    ${pc_flags}")
# Paths are ${pcfiledir}-relative (unio.pc is relocatable), so they must point into the prefix.
string(FIND "${pc_flags}" "-I${prefix}/" at)
if(at LESS 0)
  message(FATAL_ERROR "install test: unio.pc does not point into the install prefix: ${pc_flags}")
endif()
separate_arguments(pc_list UNIX_COMMAND "${pc_flags}")
separate_arguments(cxx_list UNIX_COMMAND "${CXX_FLAGS}")
separate_arguments(ld_list UNIX_COMMAND "${LINKER_FLAGS}")
step("compile and link with the pkg-config flags"
  ${CXX} ${cxx_list} -Wall -Wextra -Wpedantic -Werror ${CONSUMER_DIR}/main.cpp -o ${WORK_DIR}/pkgconfig_consumer ${pc_list} ${ld_list})
step("run the pkg-config consumer" ${WORK_DIR}/pkgconfig_consumer)
