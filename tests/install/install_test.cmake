# Packaging tests (included from tests/CMakeLists.txt):
#   install.package         installs this build to a scratch prefix, builds and runs
#                           consumer/ with find_package(unio) and again with pkg-config flags,
#                           and checks that no installed header includes liburing.h or libaio.h
#   install.readme_examples the README's code blocks are the ones consumer/main.cpp compiles
if(NOT UNIO_INSTALL)
  return()
endif()

find_program(UNIO_PKG_CONFIG NAMES pkg-config pkgconf)

add_test(NAME install.package
  COMMAND ${CMAKE_COMMAND}
    -DBUILD_DIR=${PROJECT_BINARY_DIR}
    -DCONFIG=$<CONFIG>
    -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/install-test
    -DCONSUMER_DIR=${CMAKE_CURRENT_LIST_DIR}/consumer
    -DLIBDIR=${CMAKE_INSTALL_LIBDIR}
    -DINCLUDEDIR=${CMAKE_INSTALL_INCLUDEDIR}
    -DVERSION=${PROJECT_VERSION}
    -DGENERATOR=${CMAKE_GENERATOR}
    -DMAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}
    -DCXX=${CMAKE_CXX_COMPILER}
    "-DCXX_FLAGS=${CMAKE_CXX_FLAGS}"
    "-DLINKER_FLAGS=${CMAKE_EXE_LINKER_FLAGS}"
    -DPKG_CONFIG=${UNIO_PKG_CONFIG}
    -P ${CMAKE_CURRENT_LIST_DIR}/run_install_test.cmake)
set_tests_properties(install.package PROPERTIES TIMEOUT 600 LABELS install)

add_test(NAME install.readme_examples
  COMMAND ${CMAKE_COMMAND}
    -DREADME=${PROJECT_SOURCE_DIR}/README.md
    -DSOURCE=${CMAKE_CURRENT_LIST_DIR}/consumer/main.cpp
    -P ${CMAKE_CURRENT_LIST_DIR}/readme_examples.cmake)
set_tests_properties(install.readme_examples PROPERTIES LABELS install)
