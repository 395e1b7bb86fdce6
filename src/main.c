/* main.c: wires sipd's layers together (placeholder while the layers land). */
#include <stdio.h>

int main(void)
{
	printf("sipd %s\n", SIPD_VERSION);
	return 0;
}
