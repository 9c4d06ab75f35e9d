"""Operations on images: they know registries, not the mirrors list."""
