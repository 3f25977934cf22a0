// libpng prints warnings (e.g. "iCCP: known incorrect sRGB profile") straight to stderr when
// the caller sets no handler, and OpenCV 4.6 sets none. A service must not spray its log
// per request, and the warnings never change the decoded pixels, so this interposes
// libpng's constructor (the executable's symbol wins over the shared library's) and supplies
// a handler that drops them. Errors are untouched: they still reach OpenCV, which reports
// the image as unreadable.
#include <dlfcn.h>
#include <png.h>

namespace {

void ignoreWarning(png_structp, png_const_charp) {}

} // namespace

extern "C" png_structp png_create_read_struct(png_const_charp version, png_voidp errorContext, png_error_ptr onError,
                                              png_error_ptr onWarning) {
    using Constructor = png_structp (*)(png_const_charp, png_voidp, png_error_ptr, png_error_ptr);
    static const auto next = reinterpret_cast<Constructor>(dlsym(RTLD_NEXT, "png_create_read_struct"));
    if (next == nullptr) return nullptr;
    return next(version, errorContext, onError, onWarning != nullptr ? onWarning : ignoreWarning);
}
