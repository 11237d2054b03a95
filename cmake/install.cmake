# Installs the library, its headers, a CMake package (unioConfig.cmake + unioConfigVersion.cmake)
# and a pkg-config file (unio.pc). tests/install checks all of it from a consumer's side.
#
# Dependencies. A library linked PRIVATE to unio (target_link_libraries(unio PRIVATE ...)) is
# invisible to users of a shared libunio.so, but users of a static libunio.a must link it too.
# The package files are therefore written at the end of configuration, from unio's link
# libraries, whichever CMakeLists.txt added them:
#   Threads::Threads      unioConfig.cmake: find_dependency(Threads)      unio.pc: -pthread
#   PkgConfig::<NAME>     (made by pkg_check_modules(<NAME> IMPORTED_TARGET <module>))
#                         static: unioConfig.cmake recreates PkgConfig::<NAME> with pkg-config,
#                         unio.pc lists <module> in Requires.private (static or shared)
#   uring, -luring, /path/libx.a    unio.pc: the -l flag or the path in Libs.private;
#                         CMake's export carries them as they are
# Anything else (another imported target, a generator expression) cannot be translated and is
# reported with a warning at configure time.
include(CMakePackageConfigHelpers)

set(unio_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/unio)

install(TARGETS unio EXPORT unioTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/../include/unio DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.hpp")
install(EXPORT unioTargets NAMESPACE unio:: DESTINATION ${unio_cmake_dir})

write_basic_package_version_file(${PROJECT_BINARY_DIR}/unioConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/unioConfig.cmake ${PROJECT_BINARY_DIR}/unioConfigVersion.cmake
  DESTINATION ${unio_cmake_dir})
install(FILES ${PROJECT_BINARY_DIR}/unio.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# unio.pc locates itself (${pcfiledir}), so an install moved with --prefix or DESTDIR still works.
function(unio_pc_dir_of out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "\${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

# Translates unio's link libraries into the find_dependency lines of unioConfig.cmake and the
# Requires/Libs fields of unio.pc, then writes both files (called at the end of configuration).
function(unio_write_packages)
  get_target_property(type unio TYPE)
  set(static OFF)
  if(type STREQUAL "STATIC_LIBRARY")
    set(static ON)
  endif()
  get_target_property(link unio LINK_LIBRARIES)
  get_target_property(iface unio INTERFACE_LINK_LIBRARIES)
  set(items)
  foreach(item IN LISTS link iface)
    if(item MATCHES "^\\$<LINK_ONLY:(.*)>$")
      set(item "${CMAKE_MATCH_1}")
    endif()
    if(item AND NOT item MATCHES "-NOTFOUND$")
      list(APPEND items "${item}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES items)

  set(config_deps "")
  set(requires "")
  set(libs "")
  set(need_pkgconfig OFF)
  foreach(item IN LISTS items)
    if(item STREQUAL "Threads::Threads")
      list(APPEND libs "-pthread")
    elseif(item MATCHES "^PkgConfig::(.+)$")
      set(name "${CMAKE_MATCH_1}")
      set(module "${${name}_MODULE_NAME}")
      if(NOT module)
        message(WARNING "unio: cannot tell which pkg-config module ${item} is (pkg_check_modules with "
                        "several modules?); list it in unio.pc and unioConfig.cmake by hand")
        continue()
      endif()
      list(APPEND requires "${module}")
      if(static)
        set(need_pkgconfig ON)
        string(APPEND config_deps
          "if(NOT TARGET PkgConfig::${name})\n"
          "  pkg_check_modules(${name} QUIET IMPORTED_TARGET ${module})\n"
          "  if(NOT ${name}_FOUND)\n"
          "    set(unio_FOUND FALSE)\n"
          "    set(unio_NOT_FOUND_MESSAGE \"the static libunio needs the pkg-config module ${module}\")\n"
          "    return()\n"
          "  endif()\n"
          "endif()\n")
      endif()
    elseif(item MATCHES "^\\$<" OR item MATCHES "::" OR TARGET "${item}")
      message(WARNING "unio: the link dependency '${item}' cannot be written into unio.pc and "
                      "unioConfig.cmake automatically; add it to cmake/install.cmake")
    elseif(item MATCHES "^-" OR IS_ABSOLUTE "${item}")
      list(APPEND libs "${item}")
    else()
      list(APPEND libs "-l${item}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES libs)

  if(need_pkgconfig)
    set(config_deps "find_dependency(PkgConfig)\n${config_deps}")
  endif()
  set(UNIO_CONFIG_DEPENDENCIES "${config_deps}")
  configure_package_config_file(${CMAKE_CURRENT_FUNCTION_LIST_DIR}/unioConfig.cmake.in
    ${PROJECT_BINARY_DIR}/unioConfig.cmake INSTALL_DESTINATION ${unio_cmake_dir})

  # No public header uses these libraries, so unio.pc lists them where pkg-config's convention
  # puts what only a static link needs: Requires.private and Libs.private. A program linking the
  # shared libunio.so needs just -lunio (`pkg-config --libs unio`); one linking the static
  # libunio.a asks for the rest with `pkg-config --static --libs unio`.
  list(JOIN requires ", " requires)
  list(JOIN libs " " libs)
  set(UNIO_PC_REQUIRES "")
  set(UNIO_PC_LIBS "")
  set(UNIO_PC_REQUIRES_PRIVATE "${requires}")
  set(UNIO_PC_LIBS_PRIVATE "${libs}")
  file(RELATIVE_PATH up "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
  string(REGEX REPLACE "/$" "" up "${up}")
  if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
    set(UNIO_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  else()
    set(UNIO_PC_PREFIX "\${pcfiledir}/${up}")
  endif()
  unio_pc_dir_of(UNIO_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
  unio_pc_dir_of(UNIO_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
  configure_file(${CMAKE_CURRENT_FUNCTION_LIST_DIR}/unio.pc.in ${PROJECT_BINARY_DIR}/unio.pc @ONLY)
endfunction()

cmake_language(DEFER CALL unio_write_packages)
