/* main.c - placeholder until the CLI lands. */
#include "ebb/core.h"
int main(void) { return 0; }
