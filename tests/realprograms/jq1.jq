group_by(.addr.city) | map({city: .[0].addr.city, n: length,
  total: (map(.score) | add), tags: (map(.tags[]) | unique | length),
  top: (sort_by(-.score, .id) | .[0:3] | map(.name))})
