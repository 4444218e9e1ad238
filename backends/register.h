/* register: makes the built-in backends known to core's registry. */
#ifndef PN_BACKENDS_REGISTER_H
#define PN_BACKENDS_REGISTER_H

/* Registers every backend compiled into this binary (ref always; cpu when built). Idempotent. */
void pn_register_builtin_backends(void);

#endif
