/* keymap: how the state_dict names of the checkpoints people have become the model's smp names. Sources:
 * torchvision and timm ResNet/ResNeXt (conv1, layer1.0.conv1, ..., fc dropped), timm SE-ResNeXt (se.fc1 ->
 * se_module.fc1, conv1/bn1 -> layer0.*), Cadene's SENets (layer0.*, se_module.*, last_linear dropped), smp-hub
 * encoder files (torchvision names without the classifier), whole smp models (encoder./decoder./
 * segmentation_head.) and the winner's AlbuNet (encoder.*, center, dec5..dec0, final; its aliases conv1.0/conv1.1/
 * conv2..conv5 of the encoder modules and encoder.fc dropped). Wrappers are undone first: the tensors under
 * {'state_dict': ...} / {'model': ...} (and friends) are chosen, a 'module.' prefix (DataParallel) is removed,
 * and a prefix every key shares ('model.', 'net.') too. The naming is detected from the keys or forced. */
#ifndef PN_KEYMAP_H
#define PN_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base.h"

typedef enum pn_keymap_from {
    PN_FROM_AUTO,
    PN_FROM_SMP,
    PN_FROM_TORCHVISION,
    PN_FROM_TIMM,
    PN_FROM_CADENE,
    PN_FROM_ALBUNET,
} pn_keymap_from;

/* "auto", "smp", "torchvision", "timm", "cadene", "albunet" -> the naming (PN_ERR_ARG naming the value). */
pn_status pn_keymap_from_parse(const char *s, pn_keymap_from *out);
const char *pn_keymap_from_name(pn_keymap_from f);
/* The input normalisation the weights of this naming expect, as a --norm value: "imagenet" (torchvision, timm,
 * Cadene), "unit" (the winner's AlbuNet: [0, 1], no mean/std), NULL when the names do not tell (smp). */
const char *pn_keymap_normalize(pn_keymap_from f);

/* The naming of a list of (unwrapped) keys, or PN_FROM_AUTO when none fits. */
pn_keymap_from pn_keymap_detect(const char *const *keys, int n);

/* One key of naming `from` as the name of the model (encoder E, decoder "unet" or "albunet"): true and the name
 * in out, or false and why it is dropped ("classifier", "alias of encoder.layer1", ...). */
bool pn_keymap_key(pn_keymap_from from, const char *encoder, const char *decoder, const char *key, char *out,
                   size_t cap, const char **why);

/* The mapping of a whole checkpoint. */
typedef struct pn_keymap_item {
    const char *key;  /* the source key after unwrapping (points into the caller's name) */
    char target[160]; /* the model name; "" when dropped */
    const char *why;  /* why dropped */
} pn_keymap_item;

typedef struct pn_keymap {
    pn_keymap_from from; /* detected or forced */
    bool detected;
    char group[128];       /* the path of the tensors used ("" = top level) */
    char stripped[16];     /* the prefix removed from every key ("" if none; "module." is removed per key) */
    pn_keymap_item *items; /* one per source tensor, in order */
    int n;
} pn_keymap;

/* Maps paths[i]/names[i] (as the checkpoint reader names them) for the model (encoder, decoder). A naming that
 * cannot be detected is PN_ERR_FORMAT naming the first keys and --from. */
pn_status pn_keymap_make(const char *const *paths, const char *const *names, int n, pn_keymap_from from,
                         const char *encoder, const char *decoder, pn_keymap *out);
void pn_keymap_free(pn_keymap *m);

/* The smp encoder that (mapped) names and shapes describe ("resnet34", "se_resnext50_32x4d", ...), or NULL.
 * shapes[i] has ndims[i] sizes. */
const char *pn_keymap_guess_encoder(const char *const *names, const int64_t *const *shapes, const int *ndims, int n);
/* "albunet" when the (mapped) names hold AlbuNet's decoder, else "unet"; *scse when an smp decoder has scSE. */
const char *pn_keymap_guess_decoder(const char *const *names, int n, bool *scse);

#endif
