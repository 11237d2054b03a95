# Installs the library, its headers, a CMake package (unioConfig.cmake + ConfigVersion) and a
# pkg-config file (unio.pc).
include(CMakePackageConfigHelpers)

install(TARGETS unio EXPORT unioTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/unio DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT unioTargets NAMESPACE unio:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/unio)

configure_package_config_file(cmake/unioConfig.cmake.in ${PROJECT_BINARY_DIR}/unioConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/unio)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/unioConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/unioConfig.cmake ${PROJECT_BINARY_DIR}/unioConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/unio)

set(unio_pc_libs_private "-pthread")
configure_file(cmake/unio.pc.in ${PROJECT_BINARY_DIR}/unio.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/unio.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
