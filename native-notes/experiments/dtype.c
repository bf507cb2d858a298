// prints name, d_type, d_ino for each entry of a directory
#include <dirent.h>
#include <stdio.h>
int main(int c, char **v) { DIR *d = opendir(v[1]); struct dirent *e; if (!d) { perror("opendir"); return 1; }
  while ((e = readdir(d))) printf("%s:type=%d:ino=%lu ", e->d_name, e->d_type, (unsigned long)e->d_ino); printf("\n"); return 0; }
