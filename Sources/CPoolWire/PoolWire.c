// CPoolWire is layouts only; this file makes it a target that compiles its static asserts.
#include "CPoolWire.h"
